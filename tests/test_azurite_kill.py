"""kill -9 of Azurite mid-batch, restarted as `make serve` restarts it: every file acknowledged before Azurite's
save window still ends in exactly one outcome, none lost, none duplicated."""

from __future__ import annotations

import os
import signal
import threading
import time

from devhost.azurite import SAVE_SECONDS, Azurite
from devhost.local_pipeline import LocalPipeline
from devhost.media import make_mp4
from devhost.serve import Supervisor
from tests.conftest import assert_once_each, settled, storage_commits, wait_until
from tests.support.media import held_seconds
from tests.support.task_audit import tasks_of

MARGIN_SECONDS = 3.0  # Azurite's 5 s save timer can run late on a busy machine


def test_kill_9_of_azurite_mid_batch_loses_nothing_acknowledged_before_its_save_window(tmp_path):
    clip = make_mp4(tmp_path / "clip.mp4", 6.0, size="160x120")
    long = make_mp4(tmp_path / "long.mp4", 3600.0, size="64x64", rate=1)  # ~15 s of conversion here
    azurite = Azurite(tmp_path / "azurite-data", log_file=tmp_path / "azurite.log",
                      debug_log=tmp_path / "azurite-debug.log").start()
    said: list[str] = []
    stop = threading.Event()
    try:
        # A long input asks for a core's worth of slots (BATCH_SLOTS_PER_NODE 8 / 2 vCPUs = 4): eight local slots
        # hold two long conversions and nothing else.
        settings = {"MONITOR_SCHEDULE": "*/1 * * * * *", "TASK_RETENTION_SECONDS": "60", "LOCAL_TASK_SLOTS": "8",
                    "BATCH_SLOTS_PER_NODE": "8", "BATCH_VM_SIZE": "standard_d2s_v3"}
        with LocalPipeline(tmp_path / "state", settings=settings, azurite=azurite) as pipe:
            supervisor = Supervisor(pipe, azurite, say=said.append)
            watcher = threading.Thread(target=supervisor.run, args=(stop,), daemon=True)
            watcher.start()
            # Two long conversions hold every slot past the save window, then the clips' MP3s land one after another.
            etags = {f"k/long-{i}.mp4": pipe.drop(f"k/long-{i}.mp4", long) for i in range(2)}
            wait_until(lambda: sum(t.state == "running" for t in tasks_of(pipe)) == 2, 60,
                       what="both long ones running")
            etags |= {f"k/clip-{i:02d}.mp4": pipe.drop(f"k/clip-{i:02d}.mp4", clip) for i in range(30)}
            acknowledged = time.monotonic()  # every input's upload answered 201 by now
            seconds = {name: 3600.0 if "long" in name else 6.0 for name in etags}

            def mid_batch() -> bool:  # past the save window, an MP3 stored just now, conversions still to come
                tasks = tasks_of(pipe)
                just_now = [e for t in tasks for e in t.mp3_uploads() if e["at"] > time.time() - 1.0]
                return (time.monotonic() - acknowledged > SAVE_SECONDS + MARGIN_SECONDS and bool(just_now)
                        and any(t.state == "running" for t in tasks) and any(t.state == "active" for t in tasks))

            wait_until(mid_batch, 120, interval=0.05, what="mid-batch, past Azurite's save window")
            assert azurite.proc is not None
            os.kill(azurite.proc.pid, signal.SIGKILL)
            killed = time.time()
            wait_until(lambda: any("Azurite was killed by signal 9; restarted" in line for line in said), 30,
                       what="make serve's supervisor restarted Azurite")
            outcomes = pipe.wait(etags, timeout=300)
            assert {n: o.kind for n, o in outcomes.items()} == {n: "converted" for n in etags}, said
            tasks = settled(pipe, timeout=120)
            assert sorted((t.name, t.etag) for t in tasks) == sorted(etags.items())  # one task per version
            # MP3s committed within the save window may be forgotten and converted again, nothing else twice.
            window = killed - SAVE_SECONDS - MARGIN_SECONDS
            in_window = frozenset(c.etag for c in storage_commits(azurite).commits(pipe.output_container)
                                  if c.epoch >= window)
            # (A run whose upload was cut by the kill is retried: a Batch retry, which the audit counts.)
            redone = [t for t in tasks if any(t.mp3_uploads(run) for run in t.runs()[:-1])]
            assert all(e["etag"] in in_window for t in redone for run in t.runs()[:-1] for e in t.mp3_uploads(run))
            assert bool(redone) == any("converting them again" in line for line in said), said
            assert_once_each(tasks, azurite, forgotten=in_window)
            listing = {b.name for b in pipe.service.get_container_client(pipe.output_container).list_blobs()}
            assert not any(n.endswith(".error.json") for n in listing)
            for name in etags:  # whole, after everything settled
                mp3 = pipe.download(pipe.output_container, outcomes[name].output, tmp_path / "dl" / name)
                assert abs(held_seconds(mp3) - seconds[name]) < 0.5, name
            print(f"redone after the kill: {[t.name for t in redone]}; {said}")
    finally:
        stop.set()
        azurite.stop()
