"""`mp3pipe fetch`: the MP3s and failure reports under a prefix, downloaded into a folder with the same structure,
and each failed task's stderr.txt beside its report."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.adapters.storage import BlobStorage
from shared.domain import naming

LOG_SUFFIX = ".stderr.txt"  # a failed task's stderr, beside its report: a.error.json -> a.stderr.txt


@dataclass(frozen=True)
class Fetched:
    """One blob downloaded: its name in the output container, where it was written, and what it is."""

    name: str
    path: Path
    kind: str  # "mp3" | "report" | "log"
    size: int


def log_path(report_path: Path) -> Path:
    """Where a failed task's log lands: beside its report (a.error.json -> a.stderr.txt)."""
    return report_path.with_name(report_path.name[: -len(naming.REPORT_SUFFIX)] + LOG_SUFFIX)


class UnsafeName(ValueError):
    """A blob name that would not stay inside the destination folder."""


def local_path(dest: Path, name: str) -> Path:
    """Where blob `name` goes under `dest`: its '/'-separated folders as folders. Names are untrusted: one with an
    empty, `.` or `..` segment, a backslash or a control character is refused (it could write outside `dest`)."""
    parts = name.split("/")
    if any(p in ("", ".", "..") or "\\" in p or any(ord(c) < 32 for c in p) for p in parts):
        raise UnsafeName(f"{name!r}: not a plain relative path")
    return dest.joinpath(*parts)


def wanted(storage: BlobStorage, container: str, prefix: str) -> Iterator[tuple[str, str]]:
    """(name, kind) of the MP3s and failure reports under `prefix` (tasks' logs come with their reports)."""
    for blob in storage.list_blobs(container, prefix):
        if blob.name.startswith(f"{naming.LOGS_FOLDER}/"):
            continue
        if blob.name.lower().endswith(".mp3"):
            yield blob.name, "mp3"
        elif blob.name.endswith(naming.REPORT_SUFFIX):
            yield blob.name, "report"


def log_of(report: dict[str, Any]) -> str | None:
    """The failed task's stderr.txt named by its report's `logs` folder, if it has one."""
    logs = report.get("logs")
    return f"{str(logs).rstrip('/')}/stderr.txt" if logs else None


def fetch(storage: BlobStorage, container: str, prefix: str, dest: Path,
          started: Callable[[str], object] = lambda name: None,
          skipped: Callable[[str, str], object] = lambda name, why: None) -> Iterator[Fetched]:
    """Download each MP3 and report under `prefix` into `dest` (and a report's task stderr beside it), one by one;
    `started` is told each name before its download, `skipped` each name left out and why."""
    for name, kind in wanted(storage, container, prefix):
        try:
            path = local_path(dest, name)
        except UnsafeName as exc:
            skipped(name, str(exc))
            continue
        started(name)
        yield Fetched(name, path, kind, storage.download_file(container, name, path))
        if kind != "report":
            continue
        try:
            log = log_of(json.loads(path.read_bytes()))
        except (ValueError, AttributeError):
            skipped(name, "the report is not JSON: its task's log is not fetched")
            continue
        if log is None:
            continue
        beside = log_path(path)
        try:
            yield Fetched(log, beside, "log", storage.download_file(container, log, beside))
        except ResourceNotFoundError:
            skipped(log, "the task's log is gone (lifecycle rules delete old logs)")
