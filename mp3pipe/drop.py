"""Dropping files into the input container, as `mp3pipe drop`, `make run` and the tests do: the inputs of some paths,
each uploaded in blocks and announced to a local host (BlobCreated), as Event Grid announces it in Azure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mp3pipe.eventgrid import Notifier
from shared.adapters.storage import BlobStorage
from shared.domain import folder_settings, naming

SKIPPED_SHOWN = 10  # names listed in the "skipped" line; the rest are counted


def collect_files(paths: list[Path], skipped: list[str] | None = None) -> dict[str, Path]:
    """Blob name -> local file: a file by its own name, a folder's inputs (naming.INPUT_SUFFIXES) by their
    '/'-separated path inside it. Files that are not inputs are left out, their names appended to `skipped`.

    Raises FileNotFoundError naming a path that is neither a file nor a folder.
    """
    files: dict[str, Path] = {}
    for path in paths:
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        if not path.is_dir() and not path.is_file():
            raise FileNotFoundError(f"{path}: no such file or folder")
        for p in found:
            name = p.relative_to(path).as_posix() if path.is_dir() else p.name
            if naming.is_input(p.name):
                files[name] = p
            elif skipped is not None and p.name != folder_settings.FILE_NAME:
                skipped.append(name)
    return files


def collect_settings(paths: list[Path]) -> dict[str, Path]:
    """Blob name -> local file of the folder settings files (`_mp3pipe.json`) among `paths`, named as
    `collect_files` names inputs: they go up before the inputs, so each input's submit finds its folder's."""
    out: dict[str, Path] = {}
    for path in paths:
        found = sorted(path.rglob(folder_settings.FILE_NAME)) if path.is_dir() else [path]
        for p in found:
            if p.is_file() and p.name == folder_settings.FILE_NAME:
                out[p.relative_to(path).as_posix() if path.is_dir() else p.name] = p
    return out


def skipped_line(names: list[str]) -> str:
    """One line saying which files were left out and why: `skipped 2 files: not an input (.mp4 ...): a.txt, b.mkv`."""
    shown = ", ".join(names[:SKIPPED_SHOWN]) + (f" and {len(names) - SKIPPED_SHOWN} more"
                                                  if len(names) > SKIPPED_SHOWN else "")
    return (f"skipped {len(names)} file{'s' if len(names) != 1 else ''}: not an input "
            f"({' '.join(naming.INPUT_SUFFIXES)}): {shown}")


class Dropper:
    """Uploads into one container and tells the local host (the notifier's), if one runs."""

    def __init__(self, storage: BlobStorage, container: str, notifier: Notifier) -> None:
        self.storage, self.container, self.notifier = storage, container, notifier

    def drop(self, name: str, data: bytes | Path, progress: Callable[[int, int | None], Any] | None = None) -> str:
        """Upload one file (a local file in blocks, several at a time) and post its event; returns its ETag."""
        if isinstance(data, Path):
            etag = self.storage.upload_file(self.container, name, data, progress=progress)
            size = data.stat().st_size
        else:
            etag = self.storage.upload_bytes(self.container, name, data)
            size = len(data)
        self.notifier.blob_created(self.storage.plain_blob_url(self.container, name), etag, size)
        return naming.clean_etag(etag)
