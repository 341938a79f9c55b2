"""The store of file records: read them, and write a transition of file_life only if no one wrote in between."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from shared.domain import file_life
from shared.domain.file_life import PREFIX, FileRecord, RecordState, record_from_metadata, record_path, summary_metadata
from shared.ports.deps import Deps
from shared.ports.storage import Storage

MAX_RACE_RETRIES = 8


class FileRecords:
    """Reads FileRecords and writes them conditionally (optimistic concurrency on the blob's ETag)."""

    def __init__(self, storage: Storage, container: str, clock: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.container = container
        self.clock = clock

    @classmethod
    def of(cls, deps: Deps) -> FileRecords:
        """The app's records: in the state container, stamped with the app's clock."""
        return cls(deps.storage, deps.settings.state_container, deps.clock)

    def get(self, name: str) -> tuple[FileRecord | None, str | None]:
        data, etag = self.storage.get_json_versioned(self.container, record_path(name))
        return (FileRecord.from_dict(data) if data else None), etag

    def _put_if(self, record: FileRecord, etag: str | None) -> bool:
        record = file_life.stamped(record, dt.datetime.fromtimestamp(self.clock(), dt.UTC))
        return self.storage.put_json_if(self.container, record_path(record.name), record.to_dict(), etag,
                                        metadata=summary_metadata(record))

    def list_all(self) -> dict[str, FileRecord]:
        """Every record, from one paged listing with metadata (no per-file reads): name -> record."""
        out: dict[str, FileRecord] = {}
        for blob in self.storage.list_blobs(self.container, PREFIX, metadata=True):
            record = record_from_metadata(blob.metadata)
            if record is not None:
                out[record.name] = record
        return out

    def claim(self, mine: FileRecord,
              current_etag: Callable[[], str | None]) -> tuple[RecordState, FileRecord | None]:
        """Record the version `mine` as its name's newest, unless a newer one is recorded (file_life.claim; in the
        same second the blob's `current_etag` decides); returns the state it is in (superseded when it lost) and
        the record found before, if any (this version's own after a re-trigger, else an older version's).

        Conditional writes make two versions racing (a file dropped twice in a second) agree on one winner.
        """
        # Most names have no record yet: the first try is a create (If-None-Match: *), with no read before it; a
        # record that exists makes it fail, and the read and the comparison follow.
        found, found_etag = None, None
        for attempt in range(MAX_RACE_RETRIES):
            if attempt:
                found, found_etag = self.get(mine.name)
            state, write = file_life.claim(mine, found, current_etag)
            if write is None or self._put_if(write, found_etag):
                return state, found
        raise RuntimeError(f"could not record the newest version of {mine.name!r}: too many concurrent writers")

    def apply(self, name: str, etag: str, transition: Callable[[FileRecord], FileRecord | None]) -> bool:
        """Apply a transition to the record of this exact version; a newer version's record is left alone, and
        so is a record the transition does not apply to. True when written."""
        for _ in range(MAX_RACE_RETRIES):
            record, record_etag = self.get(name)
            if record is None or record.etag != etag:
                return False
            changed = transition(record)
            if changed is None:
                return False
            if self._put_if(changed, record_etag):
                return True
        return False
