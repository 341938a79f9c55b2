"""local.settings.json: the app settings file `func start` reads, for the local host and the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def local_settings_values(path: Path | None = None) -> dict[str, str]:
    """local.settings.json "Values" (else the sample's), as `func start` reads them."""
    path = path or REPO / "local.settings.json"
    if not path.exists():
        path = REPO / "local.settings.sample.json"
    return {key: str(value) for key, value in json.loads(path.read_text()).get("Values", {}).items()}


def load_local_settings(path: Path | None = None) -> None:
    """Put local.settings.json "Values" into the environment (existing variables win), like `func start`."""
    for key, value in local_settings_values(path).items():
        os.environ.setdefault(key, value)
