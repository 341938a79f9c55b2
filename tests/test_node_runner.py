"""The node runner's readers, on files ffmpeg writes: declared durations, the default track, MP3 frame counts."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localbatch.process import find_ffmpeg
from shared.domain import ffmpeg
from shared.node import mp3, mp4
from tests.support import media_matrix as mm
from tests.support.media import held_seconds, run_task


def _make(path: Path, *args: str) -> Path:
    subprocess.run([find_ffmpeg(), "-nostdin", "-v", "error", "-y", *args, str(path)], check=True)
    return path


def test_declared_duration_codec_and_default_track(tmp_path):
    two = mm.two_tracks(tmp_path)
    info = mp4.read_mp4(str(two))
    assert [round(t.declared_seconds, 1) for t in info.tracks] == [4.0, 7.0]
    assert [t.enabled for t in info.tracks] == [False, True] and info.chosen() is info.tracks[1]
    assert info.tracks[0].codec == "mp4a" and info.tracks[0].sample_rate == 44100 and info.tracks[0].channels == 2


def test_without_a_default_track_the_first_is_taken():
    a = mp4.AudioTrack(1, 0, False, "mp4a", 44100, 2, 3.0)
    b = mp4.AudioTrack(2, 1, False, "mp4a", 44100, 2, 5.0)
    assert mp4.Mp4Info(tracks=[a, b]).chosen() is a and mp4.Mp4Info().chosen() is None


def test_mp3_inside_mp4_is_recognised(tmp_path):
    path = _make(tmp_path / "m.mp4", "-f", "lavfi", "-i", "sine=d=2", "-c:a", "libmp3lame")
    assert mp4.read_mp4(str(path)).chosen().codec == "mp3"


def test_a_fragmented_file_declares_no_duration_unless_it_says_so(tmp_path):
    live = _make(tmp_path / "live.mp4", "-f", "lavfi", "-i", "sine=d=3", "-c:a", "aac",
                 "-movflags", "frag_keyframe+empty_moov")
    info = mp4.read_mp4(str(live))
    assert info.fragmented and info.chosen().declared_seconds is None


def test_cut_before_the_moov_is_told_apart_from_not_an_mp4(tmp_path):
    whole = _make(tmp_path / "w.mp4", "-f", "lavfi", "-i", "sine=d=3", "-c:a", "aac")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(mp4.NotMp4) as truncated:
        mp4.read_mp4(str(cut))
    assert truncated.value.truncated
    text = tmp_path / "t.mp4"
    text.write_text("hello " * 100)
    with pytest.raises(mp4.NotMp4) as other:
        mp4.read_mp4(str(text))
    assert not other.value.truncated


@pytest.mark.parametrize("rate,channels", [(44100, 2), (8000, 1), (22050, 1)])
def test_mp3_duration_counts_frames(tmp_path, rate, channels):
    path = _make(tmp_path / "x.mp3", "-f", "lavfi", "-i", f"sine=d=5:sample_rate={rate}", "-ac", str(channels),
                 "-c:a", "libmp3lame")
    assert abs(mp3.duration_seconds(str(path)) - 5.0) < 0.25  # encoder delay and padding: up to 3 frames
    half = tmp_path / "half.mp3"
    half.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert 1.5 < mp3.duration_seconds(str(half)) < 3.5  # counts what is there, not what a header says


def test_the_tests_whole_mp3_oracle_decodes_instead_of_reading_the_header(tmp_path):
    """held_seconds, which every "converted and whole" assertion trusts, sees a cut the LAME/Xing header hides."""
    path = _make(tmp_path / "x.mp3", "-f", "lavfi", "-i", "sine=d=10", "-ac", "2", "-c:a", "libmp3lame")
    third = tmp_path / "third.mp3"
    third.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    assert abs(held_seconds(path) - 10.0) < 0.05 and abs(held_seconds(third) - 10.0 / 3) < 0.2
    assert held_seconds(tmp_path / "x.mp3.missing") is None


def test_a_live_fragmented_file_cut_inside_a_fragment_fails(tmp_path):
    whole = _make(tmp_path / "live.mp4", "-f", "lavfi", "-i", "sine=d=20", "-c:a", "aac", "-movflags",
                  "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "1000000")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2 + 333])
    code, verdict = run_task(tmp_path / "wd", cut)
    assert code != 0 and verdict.startswith("mp3pipe: the input is cut short: it ends inside its audio data")
    code, verdict = run_task(tmp_path / "wd2", whole)
    assert code == 0 and verdict.startswith("mp3pipe: converted 20.") and verdict.endswith("(no declared duration)")


@pytest.mark.parametrize("missing,converts", [(0.3, True), (1.0, False)])
def test_the_runner_allows_half_a_second_short_and_no_more(tmp_path, missing, converts):
    """The boundary of TOLERANCE_SECONDS (0.5 s): an input 0.3 s short of the audio it declares converts, one 1 s
    short fails; the input really holds that much less, decoded (not the runner's own reading)."""
    cut = mm.cut_short_by(tmp_path / "in", missing)
    assert abs(mp4.read_mp4(str(cut)).chosen().declared_seconds - 8.0) < 0.01
    assert abs(held_seconds(cut) - (8.0 - missing)) < 0.1
    code, verdict = run_task(tmp_path / "wd", cut)
    if converts:
        assert code == 0 and verdict.startswith("mp3pipe: converted"), verdict
        assert abs(held_seconds(tmp_path / "wd" / "output.mp3") - (8.0 - missing)) < 0.1
    else:
        assert code == 3 and not (tmp_path / "wd" / "output.mp3").exists()
        assert verdict.startswith("mp3pipe: the input is cut short: its audio track declares 8.0 s but only 7.0 s"), \
            verdict


def _state(pid: int) -> str | None:
    """A process's state letter (R, S, T, Z...), or None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are Linux's")
def test_ffmpeg_dies_with_the_runner(tmp_path):
    """When Batch kills a task's runner (terminate, wall-clock expiry), its ffmpeg goes too instead of converting on.

    ffmpeg is caught (and stopped, so it cannot finish on its own) once it runs; then only the runner gets kill -9.
    """
    wd = tmp_path / "wd"
    wd.mkdir()
    _make(wd / "input.mp4", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "600", "-c:a", "aac", "-b:a", "16k")
    argv = shlex.split(ffmpeg.command_line())
    runner = subprocess.Popen([sys.executable, "-I", *argv[1:]], cwd=wd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={"MP3PIPE_FFMPEG": find_ffmpeg(), "PATH": "/usr/bin:/bin"})
    child = None
    try:
        deadline = time.monotonic() + 60
        while child is None and time.monotonic() < deadline and runner.poll() is None:
            kids = Path(f"/proc/{runner.pid}/task/{runner.pid}/children").read_text().split()
            for kid in kids:
                try:
                    if "ffmpeg" in os.readlink(f"/proc/{kid}/exe"):
                        child = int(kid)
                except OSError:
                    pass
            time.sleep(0.002)
        assert child is not None, "the runner never started ffmpeg"
        os.kill(child, signal.SIGSTOP)
        assert _state(child) in ("T", "t", "R", "S", "D")
        runner.kill()
        runner.wait()
        deadline = time.monotonic() + 10
        while _state(child) not in (None, "Z") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _state(child) in (None, "Z"), f"ffmpeg {child} outlived its runner (state {_state(child)})"
    finally:
        if runner.poll() is None:
            runner.kill()
        if child is not None and _state(child) not in (None, "Z"):
            os.kill(child, signal.SIGKILL)
