"""An in-memory Storage port: blobs with ETags, Last-Modified to the second, metadata, listings and pages."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shared.ports.storage import BlobInfo

ACCOUNT_URL = "https://memory.invalid/devstoreaccount1"  # never fetched: fast tests run no task


class ContainerMissing(LookupError):
    """A write to a container that was never created (the real service answers 404 ContainerNotFound)."""


@dataclass
class _Blob:
    data: bytes
    etag: str
    last_modified: dt.datetime
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BlobHandle:
    """What a trigger hands over: a blob's container and name (reads go through the storage)."""

    container_name: str
    blob_name: str
    storage: MemoryStorage

    def get_blob_properties(self, **kwargs: Any) -> BlobInfo | None:
        return self.storage.properties(self)


class MemoryStorage:
    """The Storage port in a dict: container -> name -> blob. `clock` gives epoch seconds (Last-Modified).
    ETags are quoted when read, bare in listings, as Azure Storage sends them."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.containers: dict[str, dict[str, _Blob]] = {}
        self._etags = itertools.count(0x8D000000000001)

    def _container(self, container: str) -> dict[str, _Blob]:
        try:
            return self.containers[container]
        except KeyError:
            raise ContainerMissing(container) from None

    def _write(self, container: str, name: str, data: bytes, metadata: dict[str, str] | None) -> str:
        etag = f'"0x{next(self._etags):X}"'
        stamp = dt.datetime.fromtimestamp(int(self.clock()), dt.UTC)  # HTTP dates carry whole seconds
        self._container(container)[name] = _Blob(data, etag, stamp, dict(metadata or {}))
        return etag

    def _get(self, container: str, name: str) -> _Blob | None:
        return self.containers.get(container, {}).get(name)

    def ensure_containers(self, *names: str) -> None:
        for name in names:
            self.containers.setdefault(name, {})

    def blob(self, container: str, name: str) -> BlobHandle:
        return BlobHandle(container, name, self)

    def properties(self, blob: Any) -> BlobInfo | None:
        found = self._get(blob.container_name, blob.blob_name)
        return None if found is None else BlobInfo(blob.blob_name, found.etag, found.last_modified,
                                                   dict(found.metadata), len(found.data))

    def list_blobs(self, container: str, prefix: str = "", *, metadata: bool = False) -> Iterator[BlobInfo]:
        for name in sorted(self._container(container)):
            b = self.containers[container].get(name)
            if name.startswith(prefix) and b is not None:
                yield BlobInfo(name, b.etag.strip('"'), b.last_modified, dict(b.metadata) if metadata else {},
                               len(b.data))

    def list_page(self, container: str, size: int, marker: str | None) -> tuple[list[BlobInfo], str | None]:
        names = sorted(n for n in self._container(container) if marker is None or n >= marker)
        page = [BlobInfo(n, b.etag.strip('"'), b.last_modified, size=len(b.data)) for n in names[:size]
                for b in [self.containers[container][n]]]
        return page, (names[size] if len(names) > size else None)

    def set_metadata(self, container: str, name: str, metadata: dict[str, str]) -> None:
        found = self._get(container, name)
        if found is None:
            raise KeyError(f"{container}/{name}")
        self._write(container, name, found.data, metadata)

    def put_json(self, container: str, name: str, record: dict[str, Any]) -> None:
        self._write(container, name, json.dumps(record).encode(), None)

    def get_json(self, container: str, name: str) -> dict[str, Any] | None:
        return self.get_json_versioned(container, name)[0]

    def get_json_versioned(self, container: str, name: str) -> tuple[dict[str, Any] | None, str | None]:
        found = self._get(container, name)
        return (None, None) if found is None else (json.loads(found.data), found.etag)

    def put_json_if(self, container: str, name: str, record: dict[str, Any], etag: str | None,
                    metadata: dict[str, str] | None = None) -> bool:
        found = self._get(container, name)
        if (found is not None) if etag is None else (found is None or found.etag != etag):
            return False
        self._write(container, name, json.dumps(record).encode(), metadata)
        return True

    def delete_if_exists(self, container: str, name: str) -> bool:
        return self.containers.get(container, {}).pop(name, None) is not None

    def etag_of(self, container: str, name: str) -> str | None:
        found = self._get(container, name)
        return None if found is None else found.etag

    def last_modified_of(self, container: str, name: str) -> dt.datetime | None:
        found = self._get(container, name)
        return None if found is None else found.last_modified

    def read_head(self, container: str, name: str, max_bytes: int) -> bytes | None:
        found = self._get(container, name)
        return None if found is None else found.data[:max_bytes]

    def read_tail(self, container: str, name: str, max_bytes: int = 4096) -> str | None:
        found = self._get(container, name)
        return None if found is None else found.data[-max_bytes:].decode("utf-8", errors="replace")

    def upload_file(self, container: str, name: str, path: Path, progress: Callable[..., Any] | None = None) -> str:
        return self.upload_bytes(container, name, Path(path).read_bytes())

    def upload_bytes(self, container: str, name: str, data: bytes) -> str:
        return self._write(container, name, data, None)

    def node_read_url(self, container: str, name: str, ttl: dt.timedelta) -> str:
        return f"{self.plain_blob_url(container, name)}?{_sas(ttl, 'r')}"

    def node_write_container_url(self, container: str, ttl: dt.timedelta) -> str:
        return f"{self.plain_container_url(container)}?{_sas(ttl, 'cw')}"

    def plain_blob_url(self, container: str, name: str) -> str:
        return f"{self.plain_container_url(container)}/{quote(name, safe='/~')}"

    def plain_container_url(self, container: str) -> str:
        return f"{ACCOUNT_URL}/{container}"


def _sas(ttl: dt.timedelta, permissions: str) -> str:
    expiry = (dt.datetime.now(dt.UTC) + ttl).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"se={quote(expiry)}&sp={permissions}&sig=memory"

