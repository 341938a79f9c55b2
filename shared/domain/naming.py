"""Blob names -> output path, failure-report path, logs folder and Batch task id (pure)."""

from __future__ import annotations

import hashlib
import re

MAX_BLOB_NAME = 1024
MAX_TASK_ID = 64
REPORT_SUFFIX = ".error.json"
LOGS_FOLDER = "_mp3pipe-logs"
UNMAPPABLE_FOLDER = "_mp3pipe-unmappable"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_ID = re.compile(r"[^A-Za-z0-9_-]+")


class UnmappableName(ValueError):
    """The input name cannot be mapped to an output name safely; it gets a report, not a guess."""


def is_mp4(name: str) -> bool:
    """True for names ending in .mp4, any case."""
    return name.lower().endswith(".mp4") and not name.endswith("/")


def check_mappable(name: str) -> None:
    """Raise UnmappableName when the name could land an output somewhere other than its mirror."""
    if not is_mp4(name):
        raise UnmappableName(f"not an .mp4 name: {name!r}")
    if _CONTROL.search(name):
        raise UnmappableName("name contains control characters (newline, tab, ...)")
    if "\\" in name:
        raise UnmappableName("name contains a backslash, which tools read as a folder separator")
    segments = name.split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        raise UnmappableName("name has an empty, '.' or '..' folder segment")
    if segments[0].startswith("_mp3pipe"):
        raise UnmappableName("names under _mp3pipe* folders are reserved for the pipeline's own files")


def _stem(name: str) -> str:
    return name[: -len(".mp4")]


def output_name(name: str) -> str:
    """videos/2024/a.b.mp4 -> videos/2024/a.b.mp3: folders and inner dots kept.

    The extension keeps its case (a.MP4 -> a.MP3), so two inputs never share one output.
    """
    check_mappable(name)
    return name[:-1] + "3"


def report_name(name: str) -> str:
    """videos/2024/a.b.mp4 -> videos/2024/a.b.error.json; names that cannot hold one go under one folder by hash."""
    try:
        check_mappable(name)
    except UnmappableName:
        return f"{UNMAPPABLE_FOLDER}/{name_hash(name, '')}{REPORT_SUFFIX}"
    ext = name[-4:]
    path = _stem(name) + ("" if ext == ".mp4" else ext[:-1] + "3") + REPORT_SUFFIX
    if len(path) > MAX_BLOB_NAME:
        return f"{UNMAPPABLE_FOLDER}/{name_hash(name, '')}{REPORT_SUFFIX}"
    return path


def name_hash(name: str, etag: str) -> str:
    return hashlib.sha256(f"{name}\n{clean_etag(etag)}".encode()).hexdigest()


def clean_etag(etag: str) -> str:
    return etag.strip().strip('"')


def task_id(name: str, etag: str) -> str:
    """Deterministic Batch task id for one blob version: a readable slug plus a hash of name and ETag."""
    base = name.rsplit("/", 1)[-1]
    slug = _NOT_ID.sub("_", base[: -len(".mp4")] if is_mp4(base) else base).strip("_")[:24] or "file"
    digest = name_hash(name, etag)[:32]
    return f"{slug}-{digest}"[:MAX_TASK_ID]


def logs_folder(task: str) -> str:
    """Where a failed task's stdout/stderr land in the output container."""
    return f"{LOGS_FOLDER}/{task}"


def display_name(name: str, limit: int = 1024) -> str:
    """Task display name for the portal: the input blob name, trimmed to Batch's limit."""
    clean = _CONTROL.sub("?", name)
    return clean if len(clean) <= limit else "..." + clean[-(limit - 3):]
