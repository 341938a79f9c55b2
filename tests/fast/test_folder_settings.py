"""Settings per folder on the fakes: a folder's `_mp3pipe.json` sets the preset of the files under it (the nearest
wins), a bad one fails its files with a report and a rejected event, the file itself is no input, what it costs."""

from __future__ import annotations

import json
import shlex

import pytest

from shared.domain import ffmpeg, folder_settings, naming
from shared.domain.file_life import RecordState
from shared.domain.folder_settings import BadFolderSettings
from shared.usecases import status
from shared.usecases.file_records import FileRecords
from shared.usecases.monitor.tick import monitor_tick
from shared.usecases.reconcile import reconcile
from shared.usecases.submit import retry
from tests.fast.conftest import World
from tests.support.fakes.outcome_queue import MemoryQueue
from tests.support.fakes.storage import MemoryStorage


def put_settings(w: World, folder: str, body: bytes | dict[str, object]) -> None:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    w.storage.upload_bytes(w.settings.input_container, folder + folder_settings.FILE_NAME, data)


def preset_of_task(w: World, name: str) -> str:
    """The preset the file's task converts with, as the node reads it: the command line's last argument."""
    (task_id,) = w.dropped(name)
    spec = w.batch.tasks[task_id].spec
    preset = shlex.split(spec.command_line)[-1]
    mp3 = next(f for f in spec.output_files if f.path == naming.output_name(name))
    assert dict(mp3.upload_headers)["x-ms-meta-mp3pipe_preset"] == preset  # the MP3's metadata says the same
    return preset


def events(w: World) -> dict[str, dict[str, object]]:
    assert isinstance(w.deps.outcomes, MemoryQueue)
    return {e["subject"]: e for e in w.deps.outcomes.peek()}


@pytest.fixture
def world(world: World) -> World:
    world.deps.outcomes = MemoryQueue()
    return world


def test_the_nearest_folders_file_sets_the_preset_and_files_elsewhere_keep_the_app_setting(world: World) -> None:
    put_settings(world, "podcasts/", {"preset": "podcast"})
    put_settings(world, "podcasts/2024/", {"preset": "cbr320"})
    put_settings(world, "podcasts/2024/raw/", {})  # sets nothing: its parent's choice stands
    assert world.settings.ffmpeg_preset == "standard"
    assert preset_of_task(world, "podcasts/ep1.mp4") == "podcast"
    assert preset_of_task(world, "podcasts/2023/ep2.mp4") == "podcast"  # a sub-folder without a file of its own
    assert preset_of_task(world, "podcasts/2024/ep3.mp4") == "cbr320"
    assert preset_of_task(world, "podcasts/2024/raw/ep4.mp4") == "cbr320"
    assert preset_of_task(world, "videos/talk.mp4") == "standard"
    assert preset_of_task(world, "top.mp4") == "standard"
    put_settings(world, "", {"preset": "small"})  # the container's root is a folder too
    assert preset_of_task(world, "top2.mp4") == "small"
    assert preset_of_task(world, "videos/talk2.mp4") == "small"
    assert preset_of_task(world, "podcasts/ep5.mp4") == "podcast"


def test_the_outcome_events_name_the_folders_preset(world: World) -> None:
    put_settings(world, "pod/", {"preset": "podcast"})
    good, bad = world.dropped("pod/good.mp4", "pod/bad.mp4")
    world.convert("pod/good.mp4", good)
    world.fail(bad)
    monitor_tick(world.deps)
    sent = events(world)
    assert sent["pod/good.mp4"]["data"]["outcome"] == "converted"  # type: ignore[index]
    assert sent["pod/good.mp4"]["data"]["preset"] == "podcast"  # type: ignore[index]
    assert sent["pod/bad.mp4"]["data"]["outcome"] == "failed"  # type: ignore[index]
    assert sent["pod/bad.mp4"]["data"]["preset"] == "podcast"  # type: ignore[index]


@pytest.mark.parametrize(("body", "said"), [
    (b'{"preset": "podcast",}', "is not JSON"),
    (b"\xff\xfe{}", "is not UTF-8"),
    (b'["podcast"]', "must be a JSON object"),
    (b'{"preset": "podcast", "bitrate": "96k"}', "unknown key 'bitrate' (allowed: preset)"),
    (b'{"preset": "loud"}', "unknown preset 'loud' (allowed: standard, high, small, cbr128, cbr320, podcast)"),
    (b'{"preset": ["podcast"]}', "unknown preset ['podcast']"),
    (b" " * (folder_settings.MAX_BYTES + 1) + b"{}", "larger than 16 KiB"),
])
def test_a_bad_file_fails_its_folders_files_with_a_report_and_an_event_and_converts_nothing(
        world: World, body: bytes, said: str) -> None:
    put_settings(world, "pod/", body)
    for name in ("pod/a.mp4", "pod/deeper/b.mov", "elsewhere/c.mp4"):
        world.drop(name)
    results = {name: world.submit(name) for name in ("pod/a.mp4", "pod/deeper/b.mov", "elsewhere/c.mp4")}
    assert results["elsewhere/c.mp4"].status == "submitted"  # files elsewhere are unaffected
    (task,) = world.batch.tasks.values()
    assert task.spec.env()["MP3PIPE_INPUT_BLOB"] == "elsewhere/c.mp4"  # nothing under pod/ got a task
    for name in ("pod/a.mp4", "pod/deeper/b.mov"):
        assert results[name].status == "rejected"
        reason = results[name].detail
        assert reason.startswith("the folder settings file 'pod/_mp3pipe.json' is not valid: ") and said in reason
        assert reason.endswith("then convert its folder's files again with `mp3pipe retry --prefix pod/`")
        report = world.storage.get_json(world.settings.output_container, naming.report_name(name))
        assert report is not None and report["reason"] == reason and report["input"] == name
        record, _ = FileRecords.of(world.deps).get(name)
        assert record is not None and record.state == RecordState.REJECTED and record.reason == reason
        event = events(world)[name]
        assert event["type"] == "io.mp3pipe.file.rejected"
        assert event["data"] == {  # no preset applied: the folder's choice is unknown
            "input": {"name": name, "etag": record.etag}, "outcome": "rejected", "preset": None, "task_id": None,
            "reason": reason,
            "report": world.storage.plain_blob_url(world.settings.output_container, naming.report_name(name)),
        }
    shown = {f.name: f for f in status.collect(world.deps).files}
    assert shown["pod/a.mp4"].state == "failed" and "pod/_mp3pipe.json" in shown["pod/a.mp4"].reason


def test_a_bad_ancestor_fails_the_files_below_it_even_where_a_nearer_file_sets_the_preset(world: World) -> None:
    put_settings(world, "a/", b"not json")
    put_settings(world, "a/b/", {"preset": "high"})
    put_settings(world, "x/", {"preset": "bogus"})
    put_settings(world, "x/y/", {"bitrate": 1})
    world.drop("a/b/f.mp4")
    world.drop("x/y/g.mp4")
    assert "'a/_mp3pipe.json'" in world.submit("a/b/f.mp4").detail
    assert "'x/y/_mp3pipe.json'" in world.submit("x/y/g.mp4").detail  # the nearest bad file is the one named
    assert world.batch.tasks == {}


def test_the_settings_file_is_not_an_input_and_a_change_converts_nothing_again_until_retried(world: World) -> None:
    put_settings(world, "pod/", {"preset": "podcast"})
    assert world.submit("pod/" + folder_settings.FILE_NAME).status == "skipped"
    assert world.batch.tasks == {}
    (first,) = world.dropped("pod/a.mp4")
    world.convert("pod/a.mp4", first)
    monitor_tick(world.deps)

    put_settings(world, "pod/", b"{oops")  # a bad edit: the converted file stays converted
    world.clock.advance(3600)
    assert reconcile(world.deps, budget=100).submitted == 0
    monitor_tick(world.deps)
    assert set(world.batch.tasks) <= {first}  # no task added (the converted one may be cleaned up)
    assert [f.state for f in status.collect(world.deps).files] == ["done"]
    assert retry(world.deps, "pod/a.mp4").status == "rejected"  # converting it again asks its folder's settings

    put_settings(world, "pod/", {"preset": "cbr128"})  # fixed: nothing happens by itself
    world.clock.advance(3600)
    assert reconcile(world.deps, budget=100).submitted == 0
    assert set(world.batch.tasks) <= {first}
    again = retry(world.deps, "pod/a.mp4")  # the user's explicit act (`mp3pipe retry --prefix pod/`)
    assert again.status == "submitted" and again.task_id
    assert shlex.split(world.batch.tasks[again.task_id].spec.command_line)[-1] == "cbr128"
    assert naming.report_name("pod/a.mp4") not in world.outputs()  # the stale report no longer applies


class CountingStorage(MemoryStorage):
    """The fake storage, counting the settings reads submit makes."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.heads: list[str] = []

    def read_head(self, container: str, name: str, max_bytes: int) -> bytes | None:
        self.heads.append(name)
        return super().read_head(container, name, max_bytes)


def test_a_submit_reads_one_settings_blob_per_folder_level_and_no_more(world: World) -> None:
    counting = CountingStorage(world.clock)
    counting.containers = world.storage.containers
    world.deps.storage = counting
    put_settings(world, "a/", {"preset": "small"})
    for i in range(20):
        world.drop(f"a/b/c/{i}.mp4")
    for i in range(20):
        counting.heads.clear()
        assert world.submit(f"a/b/c/{i}.mp4").status == "submitted"
        assert sorted(counting.heads) == ["_mp3pipe.json", "a/_mp3pipe.json", "a/b/_mp3pipe.json",
                                          "a/b/c/_mp3pipe.json"]
    counting.heads.clear()
    world.drop("top.mp4")
    world.submit("top.mp4")
    assert counting.heads == ["_mp3pipe.json"]


def test_the_rule_itself() -> None:
    assert folder_settings.candidates("a/b/c.mp4") == ["a/b/_mp3pipe.json", "a/_mp3pipe.json", "_mp3pipe.json"]
    assert folder_settings.candidates("c.mp4") == ["_mp3pipe.json"]
    assert folder_settings.resolve("high", [("a/_mp3pipe.json", None), ("_mp3pipe.json", None)]).preset == "high"
    chosen = folder_settings.resolve("high", [("a/_mp3pipe.json", b'{"preset": "podcast"}'),
                                              ("_mp3pipe.json", b'\xef\xbb\xbf{"preset": "small"}')])  # BOM is fine
    assert (chosen.preset, chosen.source) == ("podcast", "a/_mp3pipe.json")
    with pytest.raises(BadFolderSettings, match="--prefix ''"):
        folder_settings.resolve("high", [("_mp3pipe.json", b"")])
    with pytest.raises(BadFolderSettings, match=r"--prefix 'it'\"'\"'s/'"):  # quoted as a shell reads it
        folder_settings.resolve("high", [("it's/_mp3pipe.json", b"[]")])
    assert set(folder_settings.KEYS) == {"preset"}
    assert all(ffmpeg.command_line(p).endswith(" " + p) for p in ffmpeg.PRESETS)
