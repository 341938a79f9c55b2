"""Conversion speed per class of input (multiple of real time), as the task runs on a node, and copy vs re-encode.

Each class of the media matrix is generated at a realistic length, then converted by the task's own command line
(`python3 -c <runner> standard`) in a scratch working folder, exactly as a node runs it. The MP3-in-MP4 class also
runs with the copy path turned off, to show what copying saves. Every MP3 is checked whole (decoded, not its header
read). Last line: `name=value ...`. `--smoke`: each class at 3 s, one run each (seconds, for the test suite).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from localbatch.process import find_ffmpeg
from shared.domain import ffmpeg
from shared.node import convert, mp4
from shared.node.presets import PRESETS, Preset
from tests.support import media_matrix as mm
from tests.support.media import held_seconds

SECONDS = 300.0  # each class at five minutes; the lecture keeps its two hours
REPEATS = 3
SMOKE_SECONDS = 3.0  # --smoke: every class, the lecture too, at this length, once


def _at_length(case: mm.Case, seconds: float = SECONDS) -> mm.Case:
    if case.seconds >= 3600 and seconds == SECONDS:
        return case
    scale = lambda text: text.replace(f"duration={case.seconds}", f"duration={seconds}")  # noqa: E731
    return dataclasses.replace(case, seconds=seconds, inputs=tuple(scale(a) for a in case.inputs))


def _with_copy(preset: Preset, copy: bool) -> Preset:
    """The same preset with its MP3 copy path on or off (Preset is a plain class, not a dataclass)."""
    return Preset(preset.encode, copy_mp3=copy, mono=preset.mono, loudness=preset.loudness,
                  sample_rate=preset.sample_rate)


def run_task(source: Path, work: Path, seconds: float, repeats: int = REPEATS, preset: str = "standard") -> float:
    """Seconds for the task's command line on one input, best of `repeats`; its MP3 must hold `seconds` of audio."""
    argv = shlex.split(ffmpeg.command_line(preset))
    best = float("inf")
    for _ in range(repeats):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        shutil.copyfile(source, work / "input.mp4")
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-I", *argv[1:]], cwd=work, capture_output=True, text=True,
                              env={"MP3PIPE_FFMPEG": find_ffmpeg(), "PATH": "/usr/bin:/bin"})
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{source.name}: {done.stderr.strip().splitlines()[-1]}")
        best = min(best, elapsed)
    held = held_seconds(work / "output.mp3")
    if held is None or abs(held - seconds) > convert.TOLERANCE_SECONDS:
        raise SystemExit(f"{source.name}: the MP3 holds {held} s of audio, not {seconds} s")
    return best


def run_ffmpeg(source: Path, work: Path, copy: bool, repeats: int = REPEATS) -> float:
    """Seconds for ffmpeg alone on an MP3-in-MP4, copying the track or re-encoding it at the default quality."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copyfile(source, work / "input.mp4")
    track = mp4.read_mp4(str(work / "input.mp4")).chosen()
    preset = _with_copy(PRESETS["standard"], copy)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(convert.ffmpeg_args(find_ffmpeg(), preset, track), cwd=work, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help=f"each class at {SMOKE_SECONDS:g} s, once")
    smoke = parser.parse_args(argv).smoke
    length, repeats = (SMOKE_SECONDS, 1) if smoke else (SECONDS, REPEATS)
    figures: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"{'class':32} {'audio':>9} {'seconds':>8} {'speed':>8}")
        for case in (_at_length(c, length) for c in mm.GOOD):
            source = mm.make(case, root / "in")
            took = run_task(source, root / "wd", case.seconds, repeats)
            speed = case.seconds / took
            print(f"{case.name:32} {case.seconds:8.0f}s {took:8.2f} {speed:7.0f}x")
            figures[f"speed_{case.name.replace('-', '_').replace('.', '_')}"] = f"{speed:.0f}"
        mp3_case = _at_length(next(c for c in mm.GOOD if c.copied), length)
        source = root / "in" / f"{mp3_case.name}.mp4"
        copy, encode = run_ffmpeg(source, root / "cp", True, repeats), run_ffmpeg(source, root / "enc", False, repeats)
        print(f"\nMP3 already in the MP4 ({mp3_case.seconds:.0f} s): copy {copy:.2f} s "
              f"({mp3_case.seconds / copy:.0f}x real time), re-encode {encode:.2f} s "
              f"({mp3_case.seconds / encode:.0f}x): copying is {encode / copy:.1f}x faster")
        figures["copy_speed_x"] = f"{mp3_case.seconds / copy:.0f}"
        figures["reencode_speed_x"] = f"{mp3_case.seconds / encode:.0f}"
        figures["copy_vs_reencode"] = f"{encode / copy:.1f}"
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
