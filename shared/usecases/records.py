"""The per-file record store the use-cases share: FileRecords read and written conditionally via the Storage port."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from shared.domain.records import PREFIX, FileRecord, record_from_metadata, record_path, summary_metadata
from shared.ports.storage import Storage

MAX_RACE_RETRIES = 8


class Records:
    """Reads and conditionally writes FileRecords (optimistic concurrency on the blob's ETag)."""

    def __init__(self, storage: Storage, container: str, clock: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.container = container
        self.clock = clock

    def get(self, name: str) -> tuple[FileRecord | None, str | None]:
        data, etag = self.storage.get_json_versioned(self.container, record_path(name))
        return (FileRecord.from_dict(data) if data else None), etag

    def put_if(self, record: FileRecord, etag: str | None) -> bool:
        record.updated_at = dt.datetime.fromtimestamp(self.clock(), dt.UTC).isoformat()
        return self.storage.put_json_if(self.container, record_path(record.name), asdict(record), etag,
                                        metadata=summary_metadata(record))

    def list_all(self) -> dict[str, FileRecord]:
        """Every record, from one paged listing with metadata (no per-file reads): name -> record."""
        out: dict[str, FileRecord] = {}
        for blob in self.storage.list_blobs(self.container, PREFIX, metadata=True):
            record = record_from_metadata(blob.metadata)
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
