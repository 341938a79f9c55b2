"""Transfers for the local Batch adapter: resource files downloaded and output files uploaded, as a node agent does."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.domain.planning import CONTENT_TYPE, META_PREFIX, Headers


@functools.cache
def http() -> Any:
    """One pooled HTTP client for resource files; urllib3 retries what a node agent retries, with backoff.

    Connection failures and 5xx (storage restarting, throttled) are retried for about a minute before the attempt
    counts as failed; a 404 (the input was deleted) is not retried.
    """
    import urllib3

    from shared.events import ScrubSas

    logging.getLogger("urllib3.connectionpool").addFilter(ScrubSas())  # its retry warnings print the SAS URL
    retry = urllib3.Retry(total=8, connect=8, read=3, status=5, backoff_factor=0.5, backoff_max=15,
                          status_forcelist=(429, 500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
                          raise_on_status=False)
    return urllib3.PoolManager(num_pools=4, maxsize=8, retries=retry,
                               timeout=urllib3.Timeout(connect=10, read=60))


def download(url: str, dest: Path) -> None:
    """One streamed GET to disk through a 1 MiB buffer, as a node agent fetches a resource file.

    Memory stays flat whatever the file's size, and it is one request: download_blob(max_concurrency=4) reads a
    32 MiB first range into memory, then 4 MiB ranges on 4 threads, at ~3x the CPU per byte here and more
    requests for Azurite, which shares the cores with ffmpeg.
    """
    from azure.core.exceptions import HttpResponseError

    dest.parent.mkdir(parents=True, exist_ok=True)
    response = http().request("GET", url, preload_content=False)
    try:
        if response.status == 404:
            raise ResourceNotFoundError(f"BlobNotFound: {response.reason}")
        if response.status >= 400:
            raise HttpResponseError(f"{response.status} {response.reason}")
        buffer = memoryview(bytearray(1 << 20))
        with open(dest, "wb") as fh:
            while n := response.readinto(buffer):
                fh.write(buffer[:n])
    finally:
        response.release_conn()


@functools.cache
def upload_transport(loopback: bool) -> Any:
    """One HTTP transport (one connection pool) for every output upload, not a new one per file."""
    from azure.core.pipeline.transport import RequestsTransport

    return RequestsTransport(use_env_settings=not loopback)


def upload(container_url: str, name: str, path: Path, headers: Headers = ()) -> str:
    """Upload one output file with the rule's upload headers (content type, metadata), as Batch applies a task's
    `uploadHeaders`; returns the committed blob's ETag."""
    from azure.storage.blob import ContainerClient, ContentSettings

    from shared.adapters.storage import is_loopback

    content_type, metadata = blob_properties(headers)
    settings = ContentSettings(content_type=content_type) if content_type else None
    transport = upload_transport(is_loopback(container_url))
    blob = ContainerClient.from_container_url(container_url, transport=transport).get_blob_client(name)
    with open(path, "rb") as fh:
        # A block blob appears only when its block list commits: readers never see half an MP3.
        return str(blob.upload_blob(fh, overwrite=True, max_concurrency=4, content_settings=settings,
                                    metadata=metadata or None)["etag"]).strip('"')


def blob_properties(headers: Headers) -> tuple[str | None, dict[str, str]]:
    """A task's Put Blob upload headers -> (content type, metadata), as an upload through the storage SDK takes
    them: the local counterpart of Batch applying `uploadHeaders`."""
    content_type: str | None = None
    metadata: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key == CONTENT_TYPE:
            content_type = value
        elif key.startswith(META_PREFIX):
            metadata[name[len(META_PREFIX):]] = value
        else:
            raise ValueError(f"no local mapping for the upload header {name!r}")
    return content_type, metadata
