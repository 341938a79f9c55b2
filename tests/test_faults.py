"""Faults and bad input: every dropped blob version ends as an MP3 or a failure report, none lost, none twice."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from devhost.hostile import HOSTILE_NAMES, SHELL_MARKERS, UNMAPPABLE_NAMES, bad_contents, odd_but_valid
from devhost.local_pipeline import LocalPipeline
from devhost.media import duration, make_mp4
from shared import naming
from tests.conftest import ffmpeg_pids, isolated, task_states, wait_until


def _tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def pipe(azurite, tmp_path_factory):
    settings = isolated()
    with LocalPipeline(tmp_path_factory.mktemp("faults"), settings=settings, azurite=azurite) as p:
        yield p


def _mp3_duration(pipe: LocalPipeline, name: str, tmp: Path) -> float | None:
    return duration(pipe.download(pipe.output_container, name, tmp / _tag() / "x.mp3"))


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
    present = {b.name for b in pipe.service.get_container_client(pipe.output_container).list_blobs()}
    assert {"LOUD.MP3", "Twin.mp3", "twin.mp3"} <= present  # case kept: nothing collides
    assert not {name[:-1] + "3" for name in UNMAPPABLE_NAMES} & present  # no guessed output for unmappable names
    for marker in SHELL_MARKERS:
        assert not list(pipe.state_dir.rglob(marker)) and not Path(marker).exists()
    assert abs(_mp3_duration(pipe, naming.output_name("$(touch PWNED).mp4"), tmp_path) - 4.0) < 0.2


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
    assert abs(_mp3_duration(pipe, "odd/long.mp3", tmp_path) - 600.0) < 0.5
    assert abs(_mp3_duration(pipe, "odd/multi-audio.mp3", tmp_path) - 3.0) < 0.2


def test_overwritten_while_converting_the_newer_version_wins(pipe, tmp_path, media):
    slow = make_mp4(tmp_path / "slow.mp4", 1800.0, size="64x64", rate=1)  # ~10 s of conversion
    first = pipe.drop("race/clip.mp4", slow)
    wait_until(lambda: any(s == "running" for _, s, _ in task_states(pipe)), 60)
    second = pipe.drop("race/clip.mp4", media["tone"])
    assert first != second
    outcome = pipe.wait({"race/clip.mp4": second}, timeout=120)["race/clip.mp4"]
    assert outcome.kind == "converted"
    time.sleep(12)  # long enough for the old conversion to have finished, had it not been stopped
    assert abs(_mp3_duration(pipe, "race/clip.mp3", tmp_path) - 4.0) < 0.2
    report = pipe.outcome("race/clip.mp4", second)
    assert report.kind == "converted"


def test_dropped_twice_in_a_second_gives_one_outcome_for_the_last(pipe, media, tmp_path):
    pipe.drop("twice/x.mp4", media["tone_long"])
    last = pipe.drop("twice/x.mp4", media["tone"])
    assert pipe.wait({"twice/x.mp4": last}, timeout=60)["twice/x.mp4"].kind == "converted"
    time.sleep(3)
    assert abs(_mp3_duration(pipe, "twice/x.mp3", tmp_path) - 4.0) < 0.2
    names = {b.name for b in pipe.service.get_container_client(pipe.output_container).list_blobs()}
    assert "twice/x.error.json" not in names


def test_a_killed_ffmpeg_is_retried_and_the_file_still_converts(pipe, tmp_path):
    slow = make_mp4(tmp_path / "slow2.mp4", 1800.0, size="64x64", rate=1)
    etag = pipe.drop("killed/ffmpeg.mp4", slow)
    wait_until(lambda: ffmpeg_pids(pipe), 60)
    pid = next(iter(ffmpeg_pids(pipe)), None)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    outcome = pipe.wait({"killed/ffmpeg.mp4": etag}, timeout=120)["killed/ffmpeg.mp4"]
    assert outcome.kind == "converted"
    assert abs(_mp3_duration(pipe, "killed/ffmpeg.mp3", tmp_path) - 1800.0) < 0.5


def test_deleted_before_its_task_runs_gets_a_report(azurite, tmp_path, media):
    settings = isolated(BATCH_MIN_NODES="0", SCALE_IDLE_GRACE_SECONDS="0", MONITOR_SCHEDULE="*/4 * * * * *")
    with LocalPipeline(tmp_path / "state", settings=settings, azurite=azurite) as pipe:
        # Drop right after a tick that saw no work (pool at 0 nodes): the next tick is ~4 s away.
        ticks = lambda: pipe.log_path.read_text().count('"event": "monitor"')  # noqa: E731
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and ticks() < 1:
            time.sleep(0.02)
        seen = ticks()
        while time.monotonic() < deadline and ticks() == seen:
            time.sleep(0.02)
        etag = pipe.drop("gone.mp4", media["tone"])
        wait_until(lambda: task_states(pipe), 10)
        assert [s for _, s, _ in task_states(pipe)] == ["active"]
        pipe.service.get_blob_client(pipe.input_container, "gone.mp4").delete_blob()
        outcome = pipe.wait({"gone.mp4": etag}, timeout=60)["gone.mp4"]
        assert outcome.kind == "failed"
        assert "no longer exists" in outcome.report["reason"] and "deleted" in outcome.report["reason"]
