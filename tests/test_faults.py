"""Faults and bad input: every dropped blob version ends as an MP3 or a failure report, none lost, none twice."""

from __future__ import annotations

import dataclasses
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from devhost.host import blob_client_arg
from devhost.local_pipeline import LocalPipeline
from devhost.media import make_mp4
from shared.domain import naming, planning
from shared.usecases.file_records import FileRecords
from shared.usecases.submit import submit_blob
from tests.conftest import assert_once_each, ffmpeg_pids, isolated, settled, wait_until
from tests.support.hostile import HOSTILE_NAMES, SHELL_MARKERS, UNMAPPABLE_NAMES, bad_contents, odd_but_valid
from tests.support.local_tasks import task_ids
from tests.support.media import held_seconds
from tests.support.task_audit import tasks_of


def _tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def pipe(azurite, tmp_path_factory):
    settings = isolated()
    with LocalPipeline(tmp_path_factory.mktemp("faults"), settings=settings, azurite=azurite) as p:
        yield p


def _mp3_held(pipe: LocalPipeline, name: str, tmp: Path) -> float | None:
    return held_seconds(pipe.download(pipe.output_container, name, tmp / _tag() / "x.mp3"))


def test_hostile_names_never_reach_a_shell_and_land_at_their_mirror(pipe, media, tmp_path):
    etags = {name: pipe.drop(name, media["tone"]) for name in HOSTILE_NAMES + UNMAPPABLE_NAMES}
    outcomes = pipe.wait(etags, timeout=180)
    for name in HOSTILE_NAMES:
        assert outcomes[name].kind == "converted", name
        assert outcomes[name].output == naming.output_name(name)
    for name in UNMAPPABLE_NAMES:
        o = outcomes[name]
        assert o.kind == "failed", name
        assert "cannot be mapped safely" in o.report["reason"] and o.report["input"] == name
    listed = pipe.service.get_container_client(pipe.output_container).list_blobs(include=["metadata"])
    sources = {b.name: planning.decode(b.metadata.get("mp3pipe_input", "")) for b in listed}
    assert {name: sources.get(naming.output_name(name)) for name in HOSTILE_NAMES} == {n: n for n in HOSTILE_NAMES}
    present = set(sources)
    assert {"LOUD.MP3", "Twin.mp3", "twin.mp3"} <= present  # case kept: nothing collides
    assert not {name[:-1] + "3" for name in UNMAPPABLE_NAMES} & present  # no guessed output for unmappable names
    for marker in SHELL_MARKERS:
        assert not list(pipe.state_dir.rglob(marker)) and not Path(marker).exists()
    assert abs(_mp3_held(pipe, naming.output_name("$(touch PWNED).mp4"), tmp_path) - 4.0) < 0.2


def test_bad_contents_fail_alone_with_ffmpegs_reason(pipe, media, tmp_path):
    drops: dict[str, bytes | Path] = {
        **bad_contents(tmp_path / "bad", media["tone_long"]),
        **odd_but_valid(tmp_path / "odd"),
        "ok/good1.mp4": media["tone"],
        "ok/good2.mp4": media["tone_long"],
    }
    etags = {name: pipe.drop(name, data) for name, data in drops.items()}
    outcomes = pipe.wait(etags, timeout=240)
    for name in ("bad/zero.mp4", "bad/text.mp4", "bad/truncated.mp4", "bad/noaudio.mp4"):
        o = outcomes[name]
        assert o.kind == "failed", name
        assert o.report["stderr_tail"].strip(), name  # ffmpeg's own words are in the report
        assert o.report["attempts"] == 2  # bounded: TASK_MAX_RETRIES=1 retry, then reported
    assert outcomes["bad/noaudio.mp4"].report["reason"] == "the input has no audio stream"
    assert "the input is cut short" in outcomes["bad/truncated.mp4"].report["reason"]
    for name in ("odd/multi-audio.mp4", "odd/long.mp4", "ok/good1.mp4", "ok/good2.mp4"):
        assert outcomes[name].kind == "converted", name
    assert abs(_mp3_held(pipe, "odd/long.mp3", tmp_path) - 600.0) < 0.5
    assert abs(_mp3_held(pipe, "odd/multi-audio.mp3", tmp_path) - 3.0) < 0.2


def _report_present(pipe: LocalPipeline, name: str) -> bool:
    listing = {b.name for b in pipe.service.get_container_client(pipe.output_container).list_blobs()}
    return naming.report_name(name) in listing


def test_overwritten_while_converting_the_older_task_is_terminated_and_the_newer_version_wins(pipe, tmp_path,
                                                                                               media):
    name = "race/clip.mp4"
    slow = make_mp4(tmp_path / "slow.mp4", 1800.0, size="64x64", rate=1)  # ~10 s of conversion
    first = pipe.drop(name, slow)
    old_id = naming.task_id(name, first)
    wait_until(lambda: any(t.id == old_id and t.state == "running" and t.execs() for t in tasks_of(pipe)), 60,
               what="version 1 converting")
    second = pipe.drop(name, media["tone"])  # version 2 arrives while version 1 converts
    assert first != second
    assert pipe.wait({name: second}, timeout=120)[name].kind == "converted"
    tasks = {t.id: t for t in settled(pipe) if t.name == name}  # everything ended: nothing can land late
    old, new = tasks.pop(old_id), tasks.pop(naming.task_id(name, second))
    assert not tasks
    assert old.terminated and old.execs() == 1 and old.mp3_uploads() == []  # stopped mid-conversion, no upload
    assert (new.state, new.result) == ("completed", "success")
    assert_once_each([old, new], pipe.azurite)
    assert pipe.outcome(name, second).kind == "converted"  # the MP3 there is version 2's own upload ...
    assert pipe.outcome(name, first).kind == "superseded"
    assert abs(_mp3_held(pipe, "race/clip.mp3", tmp_path) - 4.0) < 0.2  # ... and has version 2's content
    assert not _report_present(pipe, name)
    log = pipe.log_path.read_text()
    assert '"event": "terminated-older"' in log and old_id in log


class _LateTriggerStorage:
    """The real Storage adapter, as version 1's trigger saw it: its first listing (the name's stem, which submit reads
    for the version it submits) is the one taken before version 2 landed; everything else is the storage as is. Two
    triggers racing, one order pinned."""

    def __init__(self, storage: Any, stale_listing: list[Any]) -> None:
        self._storage, self._stale = storage, stale_listing

    def list_blobs(self, *args: Any, **kwargs: Any) -> Any:
        stale, self._stale = self._stale, None
        return iter(stale) if stale is not None else self._storage.list_blobs(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


def test_an_older_version_triggered_after_the_newer_one_is_superseded(running_deps, media, tmp_path):
    deps = running_deps
    name = "late/clip.mp4"
    blob = deps.storage.service.get_blob_client(deps.settings.input_container, name)
    blob.upload_blob(media["tone_long"].read_bytes())
    client = blob_client_arg("AzureWebJobsStorage", deps.settings.input_container, name)
    stale = client.get_blob_properties()  # version 1, as its trigger saw it
    seen = list(deps.storage.list_blobs(deps.settings.input_container, name.rsplit(".", 1)[0]))
    blob.upload_blob(media["tone"].read_bytes(), overwrite=True)  # version 2 lands
    newer = submit_blob(client, deps)
    older = submit_blob(client, dataclasses.replace(deps, storage=_LateTriggerStorage(deps.storage, seen)))
    assert newer.status == "submitted"
    assert older.status == "superseded"  # claim_newest: a newer version is recorded
    assert older.task_id == naming.task_id(name, naming.clean_etag(stale.etag)) != newer.task_id
    assert task_ids(deps.gateway) == [newer.task_id]  # version 1 got no task, version 2's was not terminated
    record, _ = FileRecords.of(deps).get(name)
    assert record is not None and record.etag == naming.clean_etag(client.get_blob_properties().etag)
    wait_until(lambda: deps.gateway.task_status(newer.task_id) == "completed", 60, what="version 2 converted")
    assert deps.gateway.task_state(newer.task_id) == ("completed", "success", 0)
    mp3 = tmp_path / "late.mp3"
    mp3.write_bytes(deps.storage.service.get_blob_client(deps.settings.output_container, "late/clip.mp3")
                    .download_blob().readall())
    assert abs(held_seconds(mp3) - 4.0) < 0.2  # version 2's content, not version 1's 7 s


def test_dropped_twice_in_a_second_gives_one_outcome_for_the_last(pipe, media, tmp_path):
    name = "twice/x.mp4"
    first = pipe.drop(name, media["tone_long"])
    last = pipe.drop(name, media["tone"])
    assert pipe.wait({name: last}, timeout=60)[name].kind == "converted"
    tasks = [t for t in settled(pipe) if t.name == name]
    older = [t for t in tasks if t.etag == first]  # version 1 is seen by the host only if it listed in between
    assert all(t.terminated and not t.mp3_uploads() for t in older)
    assert_once_each(tasks, pipe.azurite)
    assert pipe.outcome(name, last).kind == "converted" and pipe.outcome(name, first).kind == "superseded"
    assert abs(_mp3_held(pipe, "twice/x.mp3", tmp_path) - 4.0) < 0.2
    assert not _report_present(pipe, name)


def test_a_killed_ffmpeg_is_retried_and_the_file_still_converts(pipe, tmp_path):
    slow = make_mp4(tmp_path / "slow2.mp4", 1800.0, size="64x64", rate=1)
    etag = pipe.drop("killed/ffmpeg.mp4", slow)
    wait_until(lambda: ffmpeg_pids(pipe), 60, what="ffmpeg started")
    os.kill(ffmpeg_pids(pipe)[0], signal.SIGKILL)
    outcome = pipe.wait({"killed/ffmpeg.mp4": etag}, timeout=120)["killed/ffmpeg.mp4"]
    assert outcome.kind == "converted"
    [task] = [t for t in settled(pipe) if t.name == "killed/ffmpeg.mp4"]
    assert (task.result, task.retry_count, len(task.runs()), task.execs()) == ("success", 1, 2, 2)
    assert_once_each([task], pipe.azurite)
    assert abs(_mp3_held(pipe, "killed/ffmpeg.mp3", tmp_path) - 1800.0) < 0.5


def test_deleted_before_its_task_runs_gets_a_report(azurite, tmp_path, media):
    settings = isolated(BATCH_MIN_NODES="0", SCALE_IDLE_GRACE_SECONDS="0", MONITOR_SCHEDULE="*/4 * * * * *")
    with LocalPipeline(tmp_path / "state", settings=settings, azurite=azurite) as pipe:
        # Drop right after a tick that saw no work (pool at 0 nodes): the next tick is ~4 s away.
        ticks = lambda: pipe.log_path.read_text().count('"event": "monitor"')  # noqa: E731
        wait_until(lambda: ticks() >= 1, 30, interval=0.02, what="a first monitor tick")
        seen = ticks()
        wait_until(lambda: ticks() > seen, 30, interval=0.02, what="the next monitor tick")
        etag = pipe.drop("gone.mp4", media["tone"])
        wait_until(lambda: tasks_of(pipe), 10, what="the task added")
        assert [(t.state, t.history) for t in tasks_of(pipe)] == [("active", [])]  # queued, never run
        pipe.service.get_blob_client(pipe.input_container, "gone.mp4").delete_blob()
        outcome = pipe.wait({"gone.mp4": etag}, timeout=60)["gone.mp4"]
        assert outcome.kind == "failed"
        assert "no longer exists" in outcome.report["reason"] and "deleted" in outcome.report["reason"]
