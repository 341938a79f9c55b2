"""Test fixtures: a real Azurite on a free loopback port, real ffmpeg media, the local pipeline."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.azurite import REPO, Azurite
from devhost.media import make_mp4

SHARED_SAMPLE = REPO.parent / "shared" / "media" / "LowPriVMs-4.mp4"


def isolated(**extra: str) -> dict[str, str]:
    """Settings with containers of their own, so pipelines sharing one Azurite never see each other's files."""
    import uuid

    tag = uuid.uuid4().hex[:8]
    return {"INPUT_CONTAINER": f"in-{tag}", "OUTPUT_CONTAINER": f"out-{tag}", "STATE_CONTAINER": f"st-{tag}",
            "MONITOR_SCHEDULE": "*/1 * * * * *", **extra}


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    folder = tmp_path_factory.mktemp("azurite")
    with Azurite(folder, log_file=folder / "azurite.log") as az:
        yield az


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generated test media (lavfi sources) and the tutorial's real sample when ../shared has it."""
    d = tmp_path_factory.mktemp("media")
    files = {
        "tone": make_mp4(d / "tone.mp4", 4.0, frequency=440),
        "tone_long": make_mp4(d / "tone_long.mp4", 7.0, frequency=880),
        "silent_video": make_mp4(d / "noaudio.mp4", 3.0, audio=False),
    }
    if SHARED_SAMPLE.exists():
        files["tutorial"] = Path(shutil.copyfile(SHARED_SAMPLE, d / "LowPriVMs-4.mp4"))
    return files
