"""What the pipeline records of each input file (its newest version, task and outcome) and where a file stands."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

PREFIX = "files/"


class RecordState(StrEnum):
    """A recorded version's state (str-valued: stored records keep the plain strings)."""

    SUBMITTED = "submitted"
    UNSUBMITTED = "unsubmitted"  # its add failed: reconcile submits it again
    FAILED = "failed"
    REJECTED = "rejected"  # its name cannot be mapped to an output name


class FileState(StrEnum):
    """Where one input file stands, as `mp3pipe status` shows it."""

    WAITING = "waiting"  # not submitted yet (trigger pending, or missed: reconcile or backfill submits it)
    QUEUED = "queued"
    CONVERTING = "converting"
    DONE = "done"
    FAILED = "failed"


def record_path(name: str) -> str:
    return f"{PREFIX}{hashlib.sha256(name.encode()).hexdigest()}.json"


def mp3_landed(output_modified: dt.datetime | None, input_modified: dt.datetime) -> bool:
    """This input version's MP3 has landed: an output exists, written no earlier than the input version."""
    return output_modified is not None and output_modified >= input_modified


@dataclass
class FileRecord:
    """What the pipeline knows of one input name: its newest version and where that version stands."""

    name: str
    etag: str
    last_modified: str  # the input version's Last-Modified (ISO 8601)
    task_id: str | None
    state: RecordState
    updated_at: str
    reason: str = ""
    report: str = ""

    def __post_init__(self) -> None:
        self.state = RecordState(self.state)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileRecord:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in fields})


def summary_metadata(record: FileRecord) -> dict[str, str]:
    """The record's headline as blob metadata (ASCII): a listing of the records then answers per-file state."""
    return {
        "name": base64.urlsafe_b64encode(record.name.encode()).decode(),
        "etag": record.etag,
        "state": record.state.value,
        "task": record.task_id or "",
        "lastmodified": record.last_modified,
        "updated": record.updated_at,
    }


def record_from_metadata(meta: dict[str, str]) -> FileRecord | None:
    try:
        name = base64.urlsafe_b64decode(meta["name"]).decode()
        return FileRecord(name, meta["etag"], meta.get("lastmodified", ""), meta.get("task") or None,
                          RecordState(meta["state"]), meta.get("updated", ""))
    except (KeyError, ValueError):
        return None
