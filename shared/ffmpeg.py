"""The ffmpeg command: audio-only MP4 -> MP3 argv presets, built in one place (pure)."""

from __future__ import annotations

import shlex

# The task always reads and writes these fixed names: blob names never reach a command line.
INPUT_FILE = "input.mp4"
OUTPUT_FILE = "output.mp3"

# LAME quality presets: VBR -q:a (0 best .. 9 smallest) or a constant bitrate.
PRESETS: dict[str, tuple[str, ...]] = {
    "standard": ("-q:a", "2"),  # VBR ~190 kbit/s, transparent for most listeners
    "high": ("-q:a", "0"),  # VBR ~245 kbit/s
    "small": ("-q:a", "6"),  # VBR ~115 kbit/s, speech and podcasts
    "cbr128": ("-b:a", "128k"),
    "cbr320": ("-b:a", "320k"),
}


def argv(preset: str = "standard", program: str = "ffmpeg") -> list[str]:
    """The ffmpeg argv: no stdin, no video decode, first audio stream only, LAME encoder."""
    return [
        program,
        "-nostdin",
        "-hide_banner",
        "-y",
        "-i",
        INPUT_FILE,
        "-vn",
        "-map",
        "0:a:0",
        "-c:a",
        "libmp3lame",
        *PRESETS[preset],
        OUTPUT_FILE,
    ]


def command_line(preset: str = "standard") -> str:
    """The Batch command line (Batch does not run it in a shell; it holds no blob name)."""
    return shlex.join(argv(preset))
