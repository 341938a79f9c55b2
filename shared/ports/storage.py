"""The Storage port: what the use-cases ask of Blob Storage (records, listings, node URLs); the SDK stays behind it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class BlobLike(Protocol):
    """A handle on one blob version, as a trigger delivers it (the SDK's BlobClient): its name and properties."""

    blob_name: str
    container_name: str

    def get_blob_properties(self, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class BlobInfo:
    """One blob as a listing or a properties read shows it."""

    name: str
    etag: str
    last_modified: dt.datetime
    metadata: dict[str, str] = field(default_factory=dict)
    size: int | None = None  # bytes, where the read gives it (a properties read does)


class Storage(Protocol):
    """One storage account: the input, output and state containers. Adapter: shared.adapters.storage.BlobStorage."""

    def ensure_containers(self, *names: str) -> None:
        """Create the containers that do not exist yet."""

    def blob(self, container: str, name: str) -> BlobLike:
        """A handle on a blob (what submit takes, as from a trigger)."""

    def properties(self, blob: BlobLike) -> BlobInfo | None:
        """The handle's blob as it is now (or as its trigger saw it), None when it was deleted."""

    def list_blobs(self, container: str, prefix: str = "", *, metadata: bool = False) -> Iterator[BlobInfo]:
        """Every blob under `prefix`, in name order (paged by the adapter)."""

    def list_page(self, container: str, size: int, marker: str | None) -> tuple[list[BlobInfo], str | None]:
        """One page of up to `size` blobs from `marker` (None: the start), and the marker of the next (None: end)."""

    def set_metadata(self, container: str, name: str, metadata: dict[str, str]) -> None:
        """Replace the blob's metadata (a new ETag, the same bytes)."""

    def put_json(self, container: str, name: str, record: dict[str, Any]) -> None:
        """Write a JSON document (overwriting)."""

    def get_json(self, container: str, name: str) -> dict[str, Any] | None:
        """A JSON document, or None when absent."""

    def get_json_versioned(self, container: str, name: str) -> tuple[dict[str, Any] | None, str | None]:
        """A JSON document and its ETag (for a conditional write), or (None, None)."""

    def put_json_if(self, container: str, name: str, record: dict[str, Any], etag: str | None,
                    metadata: dict[str, str] | None = None) -> bool:
        """Write only if unchanged since read (etag) or still absent (None); False on a race."""

    def delete_if_exists(self, container: str, name: str) -> bool:
        """Delete a blob; False when it did not exist."""

    def etag_of(self, container: str, name: str) -> str | None:
        """The blob's current ETag, or None when it does not exist."""

    def last_modified_of(self, container: str, name: str) -> dt.datetime | None:
        """The blob's Last-Modified, or None when it does not exist."""

    def read_head(self, container: str, name: str, max_bytes: int) -> bytes | None:
        """The first `max_bytes` of a blob (all of a shorter one) in one request, or None when absent."""

    def read_tail(self, container: str, name: str, max_bytes: int = 4096) -> str | None:
        """The last `max_bytes` of a text blob, or None when absent."""

    def upload_file(self, container: str, name: str, path: Path, progress: Callable[..., Any] | None = None) -> str:
        """Upload a local file; returns the new blob's ETag."""

    def node_read_url(self, container: str, name: str, ttl: dt.timedelta) -> str:
        """A read-only URL for one blob, valid for `ttl`."""

    def node_write_container_url(self, container: str, ttl: dt.timedelta) -> str:
        """A create/write-only URL for a container, valid for `ttl`."""

    def plain_blob_url(self, container: str, name: str) -> str:
        """The blob's URL without a signature (a pool identity reads it)."""

    def plain_container_url(self, container: str) -> str:
        """The container's URL without a signature (a pool identity writes to it)."""
