"""One list of input suffixes, and every path that picks inputs agrees with it: the Event Grid subscription, the
trigger (submit, which the local host calls for every blob), `mp3pipe drop`, reconcile/backfill and status."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from infra.hooks import postdeploy
from mp3pipe.drop import collect_files
from shared.domain import naming
from shared.usecases import status
from shared.usecases.reconcile import backfill
from tests.fast.conftest import World
from tests.support.fakes.outcome_queue import MemoryQueue

INPUTS = ("talk.mp4", "LOUD.MP4", "trailer.m4v", "IMG_0001.MOV", "clip.mov", "memo.m4a", "Voice.M4A", "old.3gp",
          "phone.3GP", "x/y/deep.Mov")
OTHERS = ("film.mkv", "notes.txt", "song.mp3", "a.mov.txt", "amp4", "mov", "clip.webm", "folder.mov/")


def test_the_declared_suffixes_are_the_iso_family_any_case() -> None:
    assert naming.INPUT_SUFFIXES == (".mp4", ".m4v", ".mov", ".m4a", ".3gp")
    assert [n for n in INPUTS + OTHERS if naming.is_input(n)] == list(INPUTS)


def _event_grid_passes(subscription: dict, subject: str, api: str = "PutBlockList") -> bool:
    """Event Grid's evaluation of the subscription's filter for one BlobCreated event, as Microsoft documents it:
    subject filters (case-insensitive unless isSubjectCaseSensitive), then every advanced filter; advanced string
    filters compare ignoring case (learn.microsoft.com/azure/event-grid/event-filtering)."""
    f = subscription["properties"]["filter"]
    fold = (lambda s: s) if f.get("isSubjectCaseSensitive") else str.casefold
    if not fold(subject).startswith(fold(f.get("subjectBeginsWith", ""))):
        return False
    if not fold(subject).endswith(fold(f.get("subjectEndsWith", ""))):
        return False
    fields = {"subject": subject, "data.api": api}
    for adv in f.get("advancedFilters", []):
        value, wanted = fields[adv["key"]].casefold(), [v.casefold() for v in adv["values"]]
        op = adv["operatorType"]
        if op == "StringIn" and value not in wanted:
            return False
        if op == "StringEndsWith" and not any(value.endswith(w) for w in wanted):
            return False
        assert op in ("StringIn", "StringEndsWith"), f"no emulation of {op}"
    return True


def test_event_grid_delivers_exactly_the_inputs() -> None:
    sub = postdeploy.desired({"INPUT_CONTAINER": "mp4-in", "EVENTGRID_DEADLETTER_CONTAINER": "dead"},
                             "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/a",
                             "https://f/runtime/webhooks/blobs")
    passed = [n for n in INPUTS + OTHERS
              if _event_grid_passes(sub, f"/blobServices/default/containers/mp4-in/blobs/{n}")]
    assert passed == list(INPUTS)


def test_drop_picks_exactly_the_inputs_from_a_folder(tmp_path: Path) -> None:
    for name in INPUTS + OTHERS:
        if not name.endswith("/"):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_bytes(b"x")
    assert sorted(collect_files([tmp_path])) == sorted(INPUTS)


def test_the_trigger_submits_the_inputs_and_skips_the_rest(world: World) -> None:
    results = {}
    for name in INPUTS + OTHERS:
        world.drop(name)
        results[name] = world.submit(name).status
    assert {n for n, r in results.items() if r == "submitted"} == set(INPUTS)
    assert {n for n, r in results.items() if r == "skipped"} == set(OTHERS)


def test_backfill_and_status_see_exactly_the_inputs(world: World) -> None:
    for name in INPUTS + OTHERS:
        world.drop(name)
    assert backfill(world.deps, budget=100).submitted == len(INPUTS)
    assert {t.spec.display_name for t in world.batch.tasks.values()} == set(INPUTS)
    assert {f.name for f in status.collect(world.deps).files} == set(INPUTS)


def test_each_suffix_gets_its_own_mp3_name() -> None:
    assert naming.output_name("IMG_0001.MOV") == "IMG_0001.MP3"
    assert naming.output_name("x/clip.mov") == "x/clip.mp3"
    assert naming.output_name("memo.m4a") == "memo.mp3" and naming.output_name("old.3GP") == "old.MP3"
    assert naming.output_name("a.Mp4") == "a.Mp3"  # an .mp4 keeps its case letter for letter, as before
    assert naming.report_name("IMG_0001.MOV") == "IMG_0001.MP3.error.json"
    assert naming.report_name("x/clip.mov") == "x/clip.error.json"


def _report(world: World, name: str) -> dict:
    report = world.storage.get_json(world.settings.output_container, naming.unmapped_report_name(name))
    assert report is not None, f"no report for {name}"
    return report


def test_a_later_rival_of_an_mp4_is_rejected_and_never_touches_its_mp3(world: World) -> None:
    (mp4_task,) = world.dropped("talks/a.mp4")
    world.convert("talks/a.mp4", mp4_task)
    world.drop("talks/a.mov")
    result = world.submit("talks/a.mov")
    assert result.status == "rejected" and "'talks/a.mp4'" in result.detail and "talks/a.mp3" in result.detail
    assert len(world.batch.tasks) == 1  # no task that could overwrite talks/a.mp3
    assert "rename this file" in _report(world, "talks/a.mov")["reason"]
    assert "talks/a.error.json" not in world.outputs()  # the owner's report place stays free
    by_name = {f.name: f for f in status.collect(world.deps).files}
    assert (by_name["talks/a.mp4"].state, by_name["talks/a.mov"].state) == ("done", "failed")
    assert "'talks/a.mp4'" in by_name["talks/a.mov"].reason
    assert by_name["talks/a.mov"].output == naming.unmapped_report_name("talks/a.mov")
    assert backfill(world.deps, budget=10).submitted == 0  # reconcile leaves the loser rejected


def test_an_earlier_rival_loses_when_the_owner_arrives_and_its_task_is_stopped(world: World) -> None:
    queue = MemoryQueue()
    world.deps = dataclasses.replace(world.deps, outcomes=queue)
    (mov_task,) = world.dropped("b.mov")
    (mp4_task,) = world.dropped("b.mp4")
    assert world.batch.task_status(mov_task) is None  # stopped and deleted: its MP3 cannot land after the owner's
    world.convert("b.mp4", mp4_task)
    by_name = {f.name: f for f in status.collect(world.deps).files}
    assert (by_name["b.mp4"].state, by_name["b.mov"].state) == ("done", "failed")
    assert "'b.mp4'" in _report(world, "b.mov")["reason"]
    (event,) = queue.peek()  # the loser's one outcome: rejected, naming its owner (b.mp4's comes with the monitor)
    assert (event["subject"], event["data"]["outcome"]) == ("b.mov", "rejected")
    assert "'b.mp4'" in event["data"]["reason"]


def test_names_that_map_apart_are_no_rivals(world: World) -> None:
    world.dropped("c.mp4", "c.MOV", "c.b.mov", "c.Mp4")  # c.mp3, c.MP3, c.b.mp3, c.Mp3
    assert len(world.batch.tasks) == 4
