"""Crashes and restarts: kill -9 the host mid-batch, restart Azurite; every file still gets exactly one outcome."""

from __future__ import annotations

import time

from devhost.azurite import Azurite
from devhost.local_pipeline import LocalPipeline
from devhost.media import make_mp4
from shared.adapters.outcome_queue import StorageQueue
from shared.settings import Settings
from tests.conftest import assert_once_each, ffmpeg_pids, isolated, settled, wait_until
from tests.support.media import held_seconds
from tests.support.task_audit import TaskAudit, tasks_of


def _converting(task: TaskAudit, pid: int | None = None) -> bool:
    """Running, its command launched (by `pid`, if given), no upload begun in its current run."""
    run = task.runs()[-1] if task.history else []
    launched = [e for e in run if e["event"] == "exec" and (pid is None or e["pid"] == pid)]
    return task.state == "running" and bool(launched) and not any(e["event"].startswith("upload") for e in run)


def _check_all_converted_once(pipe: LocalPipeline, etags: dict[str, str], seconds: dict[str, float],
                              tmp_path) -> dict[str, TaskAudit]:
    outcomes = pipe.wait(etags, timeout=180)
    assert {n: o.kind for n, o in outcomes.items()} == {n: "converted" for n in etags}
    tasks = settled(pipe)
    assert sorted((t.name, t.etag) for t in tasks) == sorted(etags.items())  # one task per blob version
    assert all(t.result == "success" for t in tasks)
    # No task ran, launched ffmpeg or uploaded its MP3 twice without a crash to explain it; storage agrees.
    assert_once_each(tasks, pipe.azurite)
    listing = {b.name for b in pipe.service.get_container_client(pipe.output_container).list_blobs()}
    assert not any(n.endswith(".error.json") for n in listing)
    for name, etag in etags.items():  # still this version's own upload after everything settled, and whole
        assert pipe.outcome(name, etag).kind == "converted", name
        local = pipe.download(pipe.output_container, outcomes[name].output, tmp_path / "dl" / outcomes[name].output)
        assert abs(held_seconds(local) - seconds[name]) < 0.5, name
    return {t.name: t for t in tasks}


def test_kill_9_of_the_host_mid_batch_loses_nothing_and_duplicates_nothing(azurite, tmp_path):
    settings = isolated()
    clip = make_mp4(tmp_path / "clip.mp4", 6.0, size="160x120")
    long = make_mp4(tmp_path / "long.mp4", 600.0, size="64x64", rate=1)  # ~3 s of conversion: in flight at the kill
    with LocalPipeline(tmp_path / "state", settings=settings, azurite=azurite) as pipe:
        etags = {"batch/long.mp4": pipe.drop("batch/long.mp4", long)}
        etags |= {f"batch/file-{i:02d}.mp4": pipe.drop(f"batch/file-{i:02d}.mp4", clip) for i in range(20)}
        seconds = {name: 600.0 if "long" in name else 6.0 for name in etags}
        host = pipe.host.pid

        def mid_batch() -> bool:  # the long conversion is certainly still in flight when the kill lands
            tasks = tasks_of(pipe)
            return (sum(t.state == "completed" for t in tasks) >= 3
                    and any(_converting(t, host) for t in tasks if t.name == "batch/long.mp4"))

        wait_until(mid_batch, 120, interval=0.02)
        pipe.kill_host()  # mid-batch: some done, some converting, some not yet submitted
        at_kill = tasks_of(pipe)
        in_flight = [t.id for t in at_kill if _converting(t, host)]
        assert in_flight, "no conversion was running when the host was killed"
        assert sum(t.state == "completed" for t in at_kill) < len(etags)
        pipe.start_host()
        after = {t.id: t for t in _check_all_converted_once(pipe, etags, seconds, tmp_path).values()}
        for task_id in in_flight:  # recovery requeued the interrupted conversion and the new host ran it again
            assert after[task_id].requeue_count == 1
            assert after[task_id].runs()[-1][0]["pid"] == pipe.host.pid != host
            assert after[task_id].execs() == 2
        # One outcome event per version across the kill: an event held in the outbox when the host died is sent by
        # the next monitor run, so a receiver may see an id twice, never two ids (or none) for a version.
        queue = StorageQueue.from_settings(Settings.from_env(pipe.env()))
        assert queue is not None
        events: list[dict] = []

        def every_version_told() -> bool:
            events.extend(queue.take())
            return {e["subject"] for e in events} == set(etags)

        wait_until(every_version_told, 150, interval=1.0, what="an outcome event for every version")
        ids: dict[str, set[str]] = {}
        for e in events:
            ids.setdefault(e["subject"], set()).add(e["id"])
            assert e["data"]["outcome"] == "converted", e
        assert all(len(v) == 1 for v in ids.values()), ids


def test_ffmpeg_dies_with_a_killed_host_and_the_file_converts_after_restart(azurite, tmp_path):
    long = make_mp4(tmp_path / "long.mp4", 1800.0, size="64x64", rate=1)
    with LocalPipeline(tmp_path / "state", settings=isolated(), azurite=azurite) as pipe:
        etag = pipe.drop("crash/long.mp4", long)
        wait_until(lambda: ffmpeg_pids(pipe), 60, what="ffmpeg started")
        host = pipe.host.pid
        pipe.kill_host()
        [at_kill] = tasks_of(pipe)
        assert _converting(at_kill, host)
        wait_until(lambda: not ffmpeg_pids(pipe), 5, what="ffmpeg gone with its host")
        pipe.start_host()
        outcome = pipe.wait({"crash/long.mp4": etag}, timeout=120)["crash/long.mp4"]
        assert outcome.kind == "converted"
        [task] = settled(pipe)
        assert (task.state, task.result, task.requeue_count, task.execs()) == ("completed", "success", 1, 2)
        assert_once_each([task], pipe.azurite)
        mp3 = pipe.download(pipe.output_container, outcome.output, tmp_path / "long.mp3")
        assert abs(held_seconds(mp3) - 1800.0) < 0.5


def test_restarting_azurite_with_its_data_mid_batch_loses_nothing(tmp_path):
    clip = make_mp4(tmp_path / "clip.mp4", 6.0, size="160x120")
    long = make_mp4(tmp_path / "long.mp4", 600.0, size="64x64", rate=1)
    azurite = Azurite(tmp_path / "azurite-data", log_file=tmp_path / "azurite.log",
                      debug_log=tmp_path / "azurite-debug.log").start()
    try:
        with LocalPipeline(tmp_path / "state", settings={"MONITOR_SCHEDULE": "*/1 * * * * *"},
                           azurite=azurite) as pipe:
            etags = {"az/long.mp4": pipe.drop("az/long.mp4", long)}
            etags |= {f"az/file-{i:02d}.mp4": pipe.drop(f"az/file-{i:02d}.mp4", clip) for i in range(10)}
            seconds = {name: 600.0 if "long" in name else 6.0 for name in etags}
            wait_until(lambda: any(_converting(t) for t in tasks_of(pipe) if t.name == "az/long.mp4"), 120,
                       interval=0.02, what="the long conversion running")
            azurite.stop()
            converting = [t.id for t in tasks_of(pipe) if _converting(t)]
            assert converting, "no conversion was in flight when storage stopped"

            def open_uploads() -> list[str]:  # conversions finished while storage is down: uploads cannot commit
                return [t.id for t in tasks_of(pipe)
                        if t.id in converting and [e["event"] for e in t.runs()[-1]][-1:] == ["uploading"]]

            wait_until(open_uploads, 60, interval=0.02, what="an MP3 upload open while storage is down")
            stuck = open_uploads()
            back = time.time()
            azurite.start()  # same port, same data folder
            tasks = {t.id: t for t in _check_all_converted_once(pipe, etags, seconds, tmp_path).values()}
            for task_id in stuck:  # the MP3 that could not be stored then was stored once storage came back
                assert [e["at"] >= back for e in tasks[task_id].mp3_uploads()] == [True]
    finally:
        azurite.stop()
