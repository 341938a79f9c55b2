"""Hostile and broken inputs shared by the fault tests and the fault benchmark."""

from __future__ import annotations

from pathlib import Path

from devhost.media import make_mp4
from tests.support.media import truncated_copy

# Names storage accepts and the pipeline must mirror exactly, without any of it reaching a shell.
HOSTILE_NAMES = [
    "with space.mp4",
    "quote's \"double\".mp4",
    "semi;colon.mp4",
    "$(touch PWNED).mp4",
    "`touch PWNED2`.mp4",
    "a && touch PWNED3.mp4",
    "pipe | cat.mp4",
    "-rf.mp4",
    "ünï 空白.mp4",
    "LOUD.MP4",
    "Twin.mp4",
    "twin.mp4",
    "/".join(["deep"] * 40) + "/nested.mp4",
    "long/" + "n" * 990 + ".mp4",
]
SHELL_MARKERS = ["PWNED", "PWNED2", "PWNED3"]
# Storage refuses '..' segments and turns '\' into '/'; it accepts these, which cannot be mirrored safely.
UNMAPPABLE_NAMES = ["tab\there.mp4", "new\nline.mp4", "a//double.mp4", "/lead.mp4", "_mp3pipe-logs/sneaky.mp4"]


def bad_contents(folder: Path, good: Path) -> dict[str, bytes | Path]:
    """Files that must fail with a report: empty, text, truncated, no audio stream."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "bad/zero.mp4": b"",
        "bad/text.mp4": b"this is not a video, just text with an .mp4 name\n",
        "bad/truncated.mp4": truncated_copy(good, folder / "truncated.mp4"),
        "bad/noaudio.mp4": make_mp4(folder / "noaudio.mp4", 3.0, audio=False),
    }


def odd_but_valid(folder: Path) -> dict[str, Path]:
    """Valid files that look unusual: several audio streams (the first is taken), a long one."""
    return {
        "odd/multi-audio.mp4": make_mp4(folder / "multi.mp4", 3.0, audio_streams=2),
        "odd/long.mp4": make_mp4(folder / "long.mp4", 600.0, size="64x64", rate=1),
    }
