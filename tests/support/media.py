"""What a media file really holds, and broken copies of one: measured and made for tests and benchmarks."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from localbatch.process import find_ffmpeg
from shared.domain import ffmpeg


def truncated_copy(src: Path, dest: Path, fraction: float = 0.6) -> Path:
    """The first part of an MP4, as an interrupted upload would leave it."""
    data = src.read_bytes()
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data[: int(len(data) * fraction)])
    return dest


def run_task(folder: Path, source: Path, preset: str = "standard") -> tuple[int, str]:
    """Run the task's command line as a node would: a bare python3 in the task's working folder, the input under
    its fixed name; returns the exit code and the last line of stderr."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, folder / "input.mp4")
    argv = shlex.split(ffmpeg.command_line(preset))
    done = subprocess.run([sys.executable, "-I", *argv[1:]], cwd=folder, capture_output=True, text=True,
                          env={"MP3PIPE_FFMPEG": find_ffmpeg(), "PATH": "/usr/bin:/bin"}, timeout=300)
    return done.returncode, done.stderr.strip().splitlines()[-1]


def held_seconds(path: Path) -> float | None:
    """Seconds of audio a file really holds: its first audio stream decoded to the end, the samples counted.

    Independent of any header (an MP3's LAME/Xing frame count, an MP4's declared duration) and of the runner's own
    MP3 frame walk: ffmpeg's decoder says how many samples each frame gave. None when nothing could be decoded.
    """
    out = subprocess.run([find_ffmpeg(), "-nostdin", "-hide_banner", "-v", "error", "-i", str(path), "-map", "0:a:0",
                          "-f", "framecrc", "-"], capture_output=True, text=True)
    rate = samples = 0
    for line in out.stdout.splitlines():
        if line.startswith("#tb 0:"):  # "#tb 0: 1/44100": durations below count samples
            rate = int(line.split("/")[1])
        elif line and not line.startswith("#"):
            samples += int(line.split(",")[3])
    return samples / rate if rate and samples else None
