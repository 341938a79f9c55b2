"""Settings per folder: a `_mp3pipe.json` in a folder of the input container sets the preset for the files under
it; the nearest folder's file wins over its ancestors' and over the app setting; a bad file on the way fails (pure)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from shared.node.presets import PRESETS

FILE_NAME = "_mp3pipe.json"
KEYS = ("preset",)  # what a folder may set (bitrate and trim points are presets' business: see README)
MAX_BYTES = 16 * 1024  # a settings file is a line or two: anything longer is a mistake, and never read whole


class BadFolderSettings(ValueError):
    """A settings file on a file's path that cannot be used: its files fail rather than convert with other settings."""

    def __init__(self, path: str, problem: str) -> None:
        self.path, self.problem = path, problem
        folder = path[: -len(FILE_NAME)]
        super().__init__(f"the folder settings file {path!r} is not valid: {problem}; fix or delete it, then convert "
                         f"its folder's files again with `mp3pipe retry --prefix {shlex.quote(folder)}`")


@dataclass(frozen=True)
class FolderSettings:
    """The settings a file converts with, and the settings file that chose its preset ("" for the app setting)."""

    preset: str
    source: str = ""


def candidates(name: str) -> list[str]:
    """The settings files that may apply to the input `name`, nearest first: its folder's, each ancestor's, the
    container root's (one per folder level)."""
    parts = name.split("/")[:-1]
    return ["/".join([*parts[:depth], FILE_NAME]) for depth in range(len(parts), -1, -1)]


def parse(path: str, data: bytes) -> dict[str, str]:
    """The settings one file holds, or BadFolderSettings saying what is wrong with it."""
    if len(data) > MAX_BYTES:
        raise BadFolderSettings(path, f"it is larger than {MAX_BYTES // 1024} KiB")
    try:
        found = json.loads(data.decode("utf-8-sig"))  # a byte-order mark, as Windows editors write, is fine
    except UnicodeDecodeError:
        raise BadFolderSettings(path, "it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadFolderSettings(path, f"it is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(found, dict):
        raise BadFolderSettings(path, 'it must be a JSON object, e.g. {"preset": "podcast"}')
    unknown = sorted(set(found) - set(KEYS))
    if unknown:
        raise BadFolderSettings(path, f"unknown key {', '.join(map(repr, unknown))} (allowed: {', '.join(KEYS)})")
    preset = found.get("preset")
    if preset is not None and (not isinstance(preset, str) or preset not in PRESETS):
        raise BadFolderSettings(path, f"unknown preset {preset!r} (allowed: {', '.join(PRESETS)})")
    return found


def resolve(default_preset: str, read: Sequence[tuple[str, bytes | None]]) -> FolderSettings:
    """The settings for one file from its candidates' contents (nearest first; None: no such file). Every file on
    the way is checked, so a bad one fails the files under it even where a nearer file sets the preset."""
    parsed = [(path, parse(path, data)) for path, data in read if data is not None]  # the nearest bad one is named
    chosen = FolderSettings(default_preset)
    for path, found in reversed(parsed):  # the root first, each nearer folder overriding what it sets
        if "preset" in found:
            chosen = FolderSettings(found["preset"], path)
    return chosen
