"""`status` on the fakes: each input's state as the user reads it (waiting, queued, converting, done, failed),
the counts, and the pool."""

from __future__ import annotations

import json

from rich.console import Console

from mp3pipe.status_view import render
from shared.domain import naming
from shared.usecases import status
from shared.usecases.monitor.tick import monitor_tick
from tests.fast.conftest import World


def test_every_input_shows_where_it_stands(world: World) -> None:
    queued, running, done, failed, lost = world.dropped("q.mp4", "r.mp4", "d.mp4", "f.mp4", "l.mp4")
    world.drop("w.mp4")  # no trigger ran yet
    world.drop("notes.txt")  # not an input
    world.drop("_mp3pipe.json", b"{}")  # the root's folder settings: not an input, not left alone either
    world.batch.start(running)
    world.convert("d.mp4", done)
    world.fail(failed)
    world.batch.delete_task(lost)
    world.clock.advance(60)
    monitor_tick(world.deps)

    report = status.collect(world.deps)
    by_name = {f.name: f for f in report.files}
    assert {n: f.state for n, f in by_name.items()} == {
        "q.mp4": "queued", "r.mp4": "converting", "d.mp4": "done", "f.mp4": "failed", "l.mp4": "waiting",
        "w.mp4": "waiting"}
    assert by_name["q.mp4"].task_id == queued
    assert (by_name["d.mp4"].output, by_name["f.mp4"].output) == ("d.mp3", naming.report_name("f.mp4"))
    assert "Batch has no task" in by_name["l.mp4"].reason and by_name["w.mp4"].reason == ""
    assert by_name["f.mp4"].reason == "the input has no audio stream"  # from ffmpeg's stderr, via the report
    assert report.busy and report.complete
    shown = json.loads(status.as_json(report))
    assert shown["counts"] == {"waiting": 2, "queued": 1, "converting": 1, "done": 1, "failed": 1}
    assert shown["skipped"] == ["notes.txt"]  # said, not silently dropped from the listing
    screen = Console(width=120, record=True)
    screen.print(render(report, limit=50, width=120))
    assert "skipped 1 file: not an input (.mp4 .m4v .mov .m4a .3gp): notes.txt" in screen.export_text()
    pool = world.batch.pool_state()
    assert pool is not None and shown["pool"]["target"] == pool.target_dedicated + pool.target_spot > 0


def test_a_newer_version_of_a_converted_file_is_not_done(world: World) -> None:
    (task_id,) = world.dropped("song.mp4")
    world.convert("song.mp4", task_id)
    assert [f.state for f in status.collect(world.deps).files] == ["done"]
    world.clock.advance(5)
    world.drop("song.mp4", b"a better cut")  # its MP3 is older than the input now
    assert [f.state for f in status.collect(world.deps).files] == ["waiting"]
    world.submit("song.mp4")
    assert [f.state for f in status.collect(world.deps).files] == ["queued"]
