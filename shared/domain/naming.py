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


# The inputs: the ISO base media family (MP4, QuickTime and their kin), any case. The order is the precedence when
# two inputs in one folder would map to the same MP3 (a.mp4 and a.mov): the first owns it, the other is rejected.
INPUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".m4a", ".3gp")
SUFFIX_LEN = 4  # every suffix above is a dot and three characters


class UnmappableName(ValueError):
    """The input name cannot be mapped to an output name safely; it gets a report, not a guess."""


def input_suffix(name: str) -> str | None:
    """The input suffix the name ends with, lower case (None: not an input, or a folder marker)."""
    suffix = name[-SUFFIX_LEN:].lower()
    return suffix if suffix in INPUT_SUFFIXES and not name.endswith("/") else None


def is_input(name: str) -> bool:
    """True for names ending in one of INPUT_SUFFIXES, any case."""
    return input_suffix(name) is not None


def precedence(name: str) -> tuple[int, str]:
    """Orders inputs that map to one MP3: by INPUT_SUFFIXES, then by name; the smallest owns the MP3."""
    suffix = input_suffix(name)
    return (INPUT_SUFFIXES.index(suffix) if suffix else len(INPUT_SUFFIXES), name)


def check_mappable(name: str) -> None:
    """Raise UnmappableName when the name could land an output somewhere other than its mirror."""
    if not is_input(name):
        raise UnmappableName(f"not an input name ({', '.join(INPUT_SUFFIXES)}): {name!r}")
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
    return name[:-SUFFIX_LEN]


def output_name(name: str) -> str:
    """videos/2024/a.b.mp4 -> videos/2024/a.b.mp3: folders and inner dots kept.

    An .mp4's extension keeps its case letter for letter (a.MP4 -> a.MP3, a.Mp4 -> a.Mp3); another suffix gives .MP3
    in capitals (IMG_0001.MOV -> IMG_0001.MP3), else .mp3. Inputs that still meet (a.mp4, a.mov) go by `precedence`.
    """
    check_mappable(name)
    suffix = name[-SUFFIX_LEN:]
    if suffix.lower() == ".mp4":
        return name[:-1] + "3"
    return _stem(name) + (".MP3" if suffix.isupper() else ".mp3")


def mapped_output(name: str) -> str | None:
    """output_name, or None for a name that cannot be mapped."""
    try:
        return output_name(name)
    except UnmappableName:
        return None


def siblings_prefix(name: str) -> str:
    """The listing prefix that holds every input that could map to the same MP3 as this one."""
    return _stem(name) + "."


def report_name(name: str) -> str:
    """videos/2024/a.b.mp4 -> videos/2024/a.b.error.json; names that cannot hold one go under one folder by hash."""
    try:
        path = output_name(name).removesuffix(".mp3") + REPORT_SUFFIX
    except UnmappableName:
        return unmapped_report_name(name)
    return path if len(path) <= MAX_BLOB_NAME else unmapped_report_name(name)


def unmapped_report_name(name: str) -> str:
    """The report of a name with no place of its own beside an MP3 (unmappable, or a losing rival): by its hash."""
    return f"{UNMAPPABLE_FOLDER}/{name_hash(name, '')}{REPORT_SUFFIX}"


def name_hash(name: str, etag: str) -> str:
    return hashlib.sha256(f"{name}\n{clean_etag(etag)}".encode()).hexdigest()


def clean_etag(etag: str) -> str:
    return etag.strip().strip('"')


def task_id(name: str, etag: str) -> str:
    """Deterministic Batch task id for one blob version: a readable slug plus a hash of name and ETag."""
    base = name.rsplit("/", 1)[-1]
    slug = _NOT_ID.sub("_", _stem(base) if is_input(base) else base).strip("_")[:24] or "file"
    digest = name_hash(name, etag)[:32]
    return f"{slug}-{digest}"[:MAX_TASK_ID]


def logs_folder(task: str) -> str:
    """Where a failed task's stdout/stderr land in the output container."""
    return f"{LOGS_FOLDER}/{task}"


def display_name(name: str, limit: int = 1024) -> str:
    """Task display name for the portal: the input blob name, trimmed to Batch's limit."""
    clean = _CONTROL.sub("?", name)
    return clean if len(clean) <= limit else "..." + clean[-(limit - 3):]
