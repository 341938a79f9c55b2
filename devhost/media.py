"""Sample media for `make run`: MP4s generated from ffmpeg's lavfi sources, and the duration a file declares."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from localbatch.process import find_ffmpeg


def make_mp4(path: Path, seconds: float = 5.0, *, audio: bool = True, video: bool = True, size: str = "320x240",
             frequency: int = 440, audio_streams: int = 1, rate: int = 25) -> Path:
    """An H.264 + AAC MP4 from lavfi test sources (a test pattern and sine tones)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    args = [find_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    maps: list[str] = []
    n = 0
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
        maps += ["-map", f"{n}:v"]
        n += 1
    if audio:
        for k in range(audio_streams):
            args += ["-f", "lavfi", "-i", f"sine=frequency={frequency * (k + 1)}:sample_rate=44100:duration={seconds}"]
            maps += ["-map", f"{n}:a"]
            n += 1
    args += maps
    if video:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac", "-b:a", "96k"]
    args += ["-t", str(seconds), str(path)]
    subprocess.run(args, check=True)
    return path


def duration(path: Path) -> float | None:
    """The audio duration a file's headers declare (ffprobe when present, else `ffmpeg -i`).

    For an MP3 this comes from its LAME/Xing header: an MP3 cut to a third still declares its full length. To see
    what a file really holds, decode it (tests/support/media.py, held_seconds).
    """
    probe = shutil.which("ffprobe")
    if probe:
        out = subprocess.run(
            [probe, "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=duration:format=duration",
             "-of", "json", str(path)], capture_output=True, text=True,
        )
        if out.returncode != 0:
            return None
        data = json.loads(out.stdout or "{}")
        for item in data.get("streams", []) + [data.get("format", {})]:
            if item.get("duration") not in (None, "N/A"):
                return float(item["duration"])
        return None
    out = subprocess.run([find_ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    m = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", out.stderr)
    if not m or "Audio:" not in out.stderr:
        return None
    h, mnt, s = m.groups()
    return int(h) * 3600 + int(mnt) * 60 + float(s)
