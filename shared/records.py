"""Per-file records in the state container: the newest version of each input blob, its task and its outcome."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import asdict, dataclass
from typing import Any

from shared.storage import Storage

PREFIX = "files/"
MAX_RACE_RETRIES = 8


def record_path(name: str) -> str:
    return f"{PREFIX}{hashlib.sha256(name.encode()).hexdigest()}.json"


@dataclass
class FileRecord:
    """What the pipeline knows of one input name: its newest version and where that version stands."""

    name: str
    etag: str
    last_modified: str  # the input version's Last-Modified (ISO 8601)
    task_id: str | None
    state: str  # "submitted" | "unsubmitted" (its add failed: reconcile retries) | "failed" | "rejected"
    updated_at: str
    reason: str = ""
    report: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileRecord:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in fields})


def summary_metadata(record: FileRecord) -> dict[str, str]:
    """The record's headline as blob metadata (ASCII): a listing of the records then answers per-file state."""
    return {
        "name": base64.urlsafe_b64encode(record.name.encode()).decode(),
        "etag": record.etag,
        "state": record.state,
        "task": record.task_id or "",
        "lastmodified": record.last_modified,
        "updated": record.updated_at,
    }


def record_from_metadata(meta: dict[str, str]) -> FileRecord | None:
    try:
        name = base64.urlsafe_b64decode(meta["name"]).decode()
        return FileRecord(name, meta["etag"], meta.get("lastmodified", ""), meta.get("task") or None,
                          meta["state"], meta.get("updated", ""))
    except (KeyError, ValueError):
        return None


class Records:
    """Reads and conditionally writes FileRecords (optimistic concurrency on the blob's ETag)."""

    def __init__(self, storage: Storage, container: str) -> None:
        self.storage = storage
        self.container = container

    def get(self, name: str) -> tuple[FileRecord | None, str | None]:
        data, etag = self.storage.get_json_versioned(self.container, record_path(name))
        return (FileRecord.from_dict(data) if data else None), etag

    def put_if(self, record: FileRecord, etag: str | None) -> bool:
        record.updated_at = dt.datetime.now(dt.UTC).isoformat()
        return self.storage.put_json_if(self.container, record_path(record.name), asdict(record), etag,
                                        metadata=summary_metadata(record))

    def list_all(self) -> dict[str, FileRecord]:
        """Every record, from one paged listing with metadata (no per-file reads): name -> record."""
        out: dict[str, FileRecord] = {}
        container = self.storage.service.get_container_client(self.container)
        for blob in container.list_blobs(name_starts_with=PREFIX, include=["metadata"]):
            record = record_from_metadata(blob.metadata or {})
            if record is not None:
                out[record.name] = record
        return out

    def mark(self, name: str, etag: str, **changes: Any) -> bool:
        """Update the record of this exact version (e.g. failed + reason); a newer version's record is left alone."""
        for _ in range(MAX_RACE_RETRIES):
            record, record_etag = self.get(name)
            if record is None or record.etag != etag:
                return False
            for key, value in changes.items():
                setattr(record, key, value)
            if self.put_if(record, record_etag):
                return True
        return False
