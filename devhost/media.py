"""Test media and probing: generate MP4s with ffmpeg's lavfi sources; what a file declares, and what it holds."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path


def ffmpeg_exe() -> str:
    import os

    if os.environ.get("FFMPEG_PATH"):
        return os.environ["FFMPEG_PATH"]
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001
        found = shutil.which("ffmpeg")
        if not found:
            raise RuntimeError("no ffmpeg found: pip install imageio-ffmpeg or set FFMPEG_PATH") from None
        return found


def make_mp4(path: Path, seconds: float = 5.0, *, audio: bool = True, video: bool = True, size: str = "320x240",
             frequency: int = 440, audio_streams: int = 1, rate: int = 25) -> Path:
    """An H.264 + AAC MP4 from lavfi test sources (a test pattern and sine tones)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    args = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
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


def truncated_copy(src: Path, dest: Path, fraction: float = 0.6) -> Path:
    """The first part of an MP4, as an interrupted upload would leave it."""
    data = src.read_bytes()
    dest.write_bytes(data[: int(len(data) * fraction)])
    return dest


def duration(path: Path) -> float | None:
    """The audio duration a file's headers declare (ffprobe when present, else `ffmpeg -i`).

    For an MP3 this comes from its LAME/Xing header: an MP3 cut to a third still declares its full length. To see
    what a file really holds, use held_seconds().
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
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    m = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", out.stderr)
    if not m or "Audio:" not in out.stderr:
        return None
    h, mnt, s = m.groups()
    return int(h) * 3600 + int(mnt) * 60 + float(s)


def held_seconds(path: Path) -> float | None:
    """Seconds of audio a file really holds: its first audio stream decoded to the end, the samples counted.

    Independent of any header (an MP3's LAME/Xing frame count, an MP4's declared duration) and of the runner's own
    MP3 frame walk: ffmpeg's decoder says how many samples each frame gave. None when nothing could be decoded.
    """
    out = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-i", str(path), "-map", "0:a:0",
                          "-f", "framecrc", "-"], capture_output=True, text=True)
    rate = samples = 0
    for line in out.stdout.splitlines():
        if line.startswith("#tb 0:"):  # "#tb 0: 1/44100": durations below count samples
            rate = int(line.split("/")[1])
        elif line and not line.startswith("#"):
            samples += int(line.split(",")[3])
    return samples / rate if rate and samples else None
