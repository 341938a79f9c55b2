"""Crashes and restarts: kill -9 the host mid-batch, restart Azurite; every file still gets exactly one outcome."""

from __future__ import annotations

import time

from devhost.azurite import Azurite
from devhost.local_pipeline import LocalPipeline
from devhost.media import duration, make_mp4
from tests.conftest import ffmpeg_pids, isolated, task_states, wait_until


def _settled_task_rows(pipe: LocalPipeline, timeout: float = 30.0) -> list[tuple[str, str, str | None]]:
    """Task rows once none is active or running: an output lands a moment before its task completes, as in Batch."""
    wait_until(lambda: all(state == "completed" for _, state, _ in task_states(pipe)), timeout)
    return task_states(pipe)


def _check_all_converted_once(pipe: LocalPipeline, etags: dict[str, str], tmp_path) -> None:
    outcomes = pipe.wait(etags, timeout=180)
    assert {n: o.kind for n, o in outcomes.items()} == {n: "converted" for n in etags}
    rows = _settled_task_rows(pipe)
    assert len(rows) == len(etags)  # one task per blob version: no duplicates after the restart
    assert all(state == "completed" and result == "success" for _, state, result in rows)
    listing = {b.name for b in pipe.service.get_container_client(pipe.output_container).list_blobs()}
    assert not any(n.endswith(".error.json") for n in listing)
    for name, o in outcomes.items():  # every MP3 is whole: it decodes to the full duration
        local = pipe.download(pipe.output_container, o.output, tmp_path / "dl" / o.output)
        assert abs(duration(local) - 6.0) < 0.2, name


def test_kill_9_of_the_host_mid_batch_loses_nothing_and_duplicates_nothing(azurite, tmp_path):
    settings = isolated()
    clip = make_mp4(tmp_path / "clip.mp4", 6.0, size="160x120")
    with LocalPipeline(tmp_path / "state", settings=settings, azurite=azurite) as pipe:
        etags = {f"batch/file-{i:02d}.mp4": pipe.drop(f"batch/file-{i:02d}.mp4", clip) for i in range(20)}

        def mid_batch() -> bool:
            rows = task_states(pipe)
            return sum(1 for _, s, _ in rows if s == "completed") >= 3 and any(s == "running" for _, s, _ in rows)

        wait_until(mid_batch, 60, interval=0.02)
        pipe.kill_host()  # mid-batch: some done, some running, some not yet submitted
        done_before = sum(1 for _, s, _ in task_states(pipe) if s == "completed")
        assert done_before < 20
        pipe.start_host()
        _check_all_converted_once(pipe, etags, tmp_path)


def test_ffmpeg_dies_with_a_killed_host_and_the_file_converts_after_restart(azurite, tmp_path):
    long = make_mp4(tmp_path / "long.mp4", 1800.0, size="64x64", rate=1)
    with LocalPipeline(tmp_path / "state", settings=isolated(), azurite=azurite) as pipe:
        etag = pipe.drop("crash/long.mp4", long)
        wait_until(lambda: ffmpeg_pids(pipe), 60)
        assert ffmpeg_pids(pipe), "ffmpeg never started"
        pipe.kill_host()
        wait_until(lambda: not ffmpeg_pids(pipe), 5)
        assert ffmpeg_pids(pipe) == []  # no conversion keeps a core busy for a host that is gone
        pipe.start_host()
        outcome = pipe.wait({"crash/long.mp4": etag}, timeout=120)["crash/long.mp4"]
        assert outcome.kind == "converted"
        assert [state for _, state, _ in _settled_task_rows(pipe)] == ["completed"]
        mp3 = pipe.download(pipe.output_container, outcome.output, tmp_path / "long.mp3")
        assert abs(duration(mp3) - 1800.0) < 0.5


def test_restarting_azurite_with_its_data_mid_batch_loses_nothing(tmp_path):
    clip = make_mp4(tmp_path / "clip.mp4", 6.0, size="160x120")
    azurite = Azurite(tmp_path / "azurite-data", log_file=tmp_path / "azurite.log").start()
    try:
        with LocalPipeline(tmp_path / "state", settings={"MONITOR_SCHEDULE": "*/1 * * * * *"},
                           azurite=azurite) as pipe:
            etags = {f"az/file-{i:02d}.mp4": pipe.drop(f"az/file-{i:02d}.mp4", clip) for i in range(10)}
            time.sleep(0.8)
            azurite.stop()
            time.sleep(2.0)
            azurite.start()  # same port, same data folder
            _check_all_converted_once(pipe, etags, tmp_path)
    finally:
        azurite.stop()
