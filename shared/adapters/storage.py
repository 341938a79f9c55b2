"""The Storage port on Azure Blob Storage (the SDK): clients from settings, JSON records, listings, node URLs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    UserDelegationKey,
    generate_blob_sas,
    generate_container_sas,
)

from shared.ports.storage import BlobInfo, BlobLike
from shared.settings import Settings

log = logging.getLogger("mp3pipe.storage")


def is_loopback(url: str) -> bool:
    """Whether a storage URL points at this machine (Azurite)."""
    from urllib.parse import urlsplit

    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


def loopback_transport(url: str) -> Any | None:
    """For a storage endpoint on this machine (Azurite): an HTTP transport that ignores the environment's proxy and
    .netrc settings (a proxy must never carry loopback traffic, and looking them up costs each request ~0.2 ms of
    CPU in `requests`); None for any other endpoint, which keeps the SDK's default."""
    if not is_loopback(url):
        return None
    from azure.core.pipeline.transport import RequestsTransport

    return RequestsTransport(use_env_settings=False)


def connection_client(connection: str, *args: Any, cls: Any = BlobServiceClient, **kwargs: Any) -> Any:
    """An SDK client (`cls`: BlobServiceClient unless told, or e.g. QueueClient with its queue name in `args`) from
    a connection string; loopback endpoints get `loopback_transport`."""
    client = cls.from_connection_string(connection, *args, **kwargs)
    transport = None if "transport" in kwargs else loopback_transport(client.url)
    return cls.from_connection_string(connection, *args, transport=transport, **kwargs) if transport else client


def identity_endpoint(service: str) -> tuple[str, Any] | None:
    """The app's storage by Entra ID for one service ("blob", "queue"): its endpoint
    (`AzureWebJobsStorage__<service>ServiceUri`, else from `__accountName`) and the identity credential (`__clientId`
    picks a user-assigned identity); None when neither setting names the account."""
    import os

    account = os.environ.get("AzureWebJobsStorage__accountName")
    uri = os.environ.get(f"AzureWebJobsStorage__{service}ServiceUri")
    if not (account or uri):
        return None
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential(managed_identity_client_id=os.environ.get("AzureWebJobsStorage__clientId"))
    return uri or f"https://{account}.{service}.core.windows.net", credential


def service_client(settings: Settings, **kwargs: Any) -> BlobServiceClient:
    """A BlobServiceClient for the app's storage: Entra ID identity first, a connection string otherwise."""
    endpoint = identity_endpoint("blob") if settings.storage_connection == "" else None
    if endpoint is not None:
        url, credential = endpoint
        return BlobServiceClient(url, credential=credential, **kwargs)
    return connection_client(settings.storage_connection, **kwargs)


class BlobStorage:
    """The Storage port on one account (input, output and state containers); `service` is the SDK client."""

    def __init__(self, service: BlobServiceClient) -> None:
        self.service = service
        self._delegation_key: UserDelegationKey | None = None
        self._delegation_expiry: dt.datetime | None = None
        self._lock = threading.Lock()
        self._warned_key = False

    @classmethod
    def from_settings(cls, settings: Settings) -> BlobStorage:
        return cls(service_client(settings))

    @property
    def account_name(self) -> str:
        return self.service.account_name or ""

    def ensure_containers(self, *names: str) -> None:
        """Create the containers that do not exist yet (an existing one costs a read, not a create attempt)."""
        for name in names:
            container = self.service.get_container_client(name)
            try:
                container.get_container_properties()
            except ResourceNotFoundError:
                try:
                    container.create_container()
                    log.info("created container %s", name)
                except ResourceExistsError:
                    pass

    # -- blobs and listings ----------------------------------------------------------------------------------------
    def blob(self, container: str, name: str) -> BlobLike:
        return self.service.get_blob_client(container, name)

    def properties(self, blob: BlobLike) -> BlobInfo | None:
        try:
            props = blob.get_blob_properties()
        except ResourceNotFoundError:
            return None
        return BlobInfo(blob.blob_name, props.etag, props.last_modified, dict(props.metadata or {}), props.size)

    def list_blobs(self, container: str, prefix: str = "", *, metadata: bool = False) -> Iterator[BlobInfo]:
        listing = self.service.get_container_client(container).list_blobs(
            name_starts_with=prefix or None, include=["metadata"] if metadata else None)
        for item in listing:
            yield _info(item)

    def list_page(self, container: str, size: int, marker: str | None) -> tuple[list[BlobInfo], str | None]:
        pages = self.service.get_container_client(container).list_blobs(results_per_page=size).by_page(
            continuation_token=marker)
        page = [_info(item) for item in next(pages, [])]
        return page, pages.continuation_token

    def set_metadata(self, container: str, name: str, metadata: dict[str, str]) -> None:
        self.service.get_blob_client(container, name).set_blob_metadata(metadata)

    # -- records -------------------------------------------------------------------------------------------------
    def put_json(self, container: str, name: str, record: dict[str, Any]) -> None:
        body = _json_body(record)
        self.service.get_blob_client(container, name).upload_blob(
            body, overwrite=True, content_settings=_json_content()
        )

    def get_json(self, container: str, name: str) -> dict[str, Any] | None:
        try:
            data = self.service.get_blob_client(container, name).download_blob().readall()
        except ResourceNotFoundError:
            return None
        return json.loads(data)

    def get_json_versioned(self, container: str, name: str) -> tuple[dict[str, Any] | None, str | None]:
        """A JSON record and its ETag (for a conditional write), or (None, None)."""
        try:
            downloader = self.service.get_blob_client(container, name).download_blob()
        except ResourceNotFoundError:
            return None, None
        return json.loads(downloader.readall()), downloader.properties.etag

    def put_json_if(self, container: str, name: str, record: dict[str, Any], etag: str | None,
                    metadata: dict[str, str] | None = None) -> bool:
        """Write only if the record is unchanged since read (etag) or still absent (None); False on a race."""
        from azure.core import MatchConditions

        body = _json_body(record)
        blob = self.service.get_blob_client(container, name)
        try:
            if etag is None:
                blob.upload_blob(body, overwrite=False, content_settings=_json_content(), metadata=metadata)
            else:
                blob.upload_blob(body, overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified,
                                 content_settings=_json_content(), metadata=metadata)
        except ResourceExistsError:
            return False
        except HttpResponseError as exc:
            if exc.status_code in (409, 412):
                return False
            raise
        return True

    def delete_if_exists(self, container: str, name: str) -> bool:
        try:
            self.service.get_blob_client(container, name).delete_blob()
            return True
        except ResourceNotFoundError:
            return False

    def etag_of(self, container: str, name: str) -> str | None:
        """The blob's current ETag, or None when it does not exist."""
        try:
            return self.service.get_blob_client(container, name).get_blob_properties().etag
        except ResourceNotFoundError:
            return None

    def last_modified_of(self, container: str, name: str) -> dt.datetime | None:
        """The blob's Last-Modified, or None when it does not exist."""
        try:
            return self.service.get_blob_client(container, name).get_blob_properties().last_modified
        except ResourceNotFoundError:
            return None

    def read_head(self, container: str, name: str, max_bytes: int) -> bytes | None:
        """The first `max_bytes` of a blob (all of a shorter one) in one ranged GET, or None when absent."""
        try:
            return self.service.get_blob_client(container, name).download_blob(offset=0, length=max_bytes).readall()
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            if exc.status_code == 416:  # a range of an empty blob: the service refuses it
                return b""
            raise

    def read_tail(self, container: str, name: str, max_bytes: int = 4096) -> str | None:
        """The last `max_bytes` of a text blob (for stderr tails), or None when absent."""
        blob = self.service.get_blob_client(container, name)
        try:
            size = blob.get_blob_properties().size
            offset = max(0, size - max_bytes)
            data = blob.download_blob(offset=offset, length=size - offset).readall() if size else b""
        except ResourceNotFoundError:
            return None
        return data.decode("utf-8", errors="replace")

    def upload_file(self, container: str, name: str, path: Path, progress: Callable[..., Any] | None = None) -> str:
        """Upload a local file in blocks, several at a time; returns the new blob's ETag."""
        with open(path, "rb") as fh:
            result = self.service.get_blob_client(container, name).upload_blob(
                fh, overwrite=True, max_concurrency=4, progress_hook=progress,
            )
        return result["etag"]

    def upload_bytes(self, container: str, name: str, data: bytes) -> str:
        """Upload bytes as one blob (overwriting); returns the new blob's ETag."""
        return self.service.get_blob_client(container, name).upload_blob(data, overwrite=True)["etag"]

    def download_file(self, container: str, name: str, path: Path,
                      progress: Callable[[int, int | None], Any] | None = None) -> int:
        """Download one blob into a local file, in ranges, several at a time (written beside it and renamed, so a
        broken download leaves no partial file under the name); returns its size in bytes."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        try:
            with open(partial, "wb") as fh:
                size = self.service.get_blob_client(container, name).download_blob(
                    max_concurrency=4, progress_hook=progress).readinto(fh)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return size

    # -- URLs for Batch nodes ------------------------------------------------------------------------------------
    def _signing(self, expiry: dt.datetime) -> dict[str, Any]:
        """Account key when the connection has one (Azurite), else a user-delegation key from our identity."""
        key = getattr(self.service.credential, "account_key", None)
        if key:
            host = self.service.primary_hostname or ""
            if not host.startswith(("127.0.0.1", "localhost")) and not self._warned_key:
                self._warned_key = True
                log.warning("signing node URLs with the storage account key; in Azure use the app's identity "
                            "(AzureWebJobsStorage__accountName) so nodes get user-delegation SAS URLs instead")
            return {"account_key": key}
        with self._lock:
            if self._delegation_key is None or self._delegation_expiry is None or self._delegation_expiry < expiry:
                start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
                until = expiry + dt.timedelta(hours=1)
                self._delegation_key = self.service.get_user_delegation_key(start, until)
                self._delegation_expiry = until
            return {"user_delegation_key": self._delegation_key}

    def node_read_url(self, container: str, name: str, ttl: dt.timedelta) -> str:
        """A read-only URL for one blob, valid for `ttl` (what a task's resource file needs)."""
        expiry = dt.datetime.now(dt.UTC) + ttl
        blob = self.service.get_blob_client(container, name)
        sas = generate_blob_sas(
            self.account_name, container, name, permission=BlobSasPermissions(read=True), expiry=expiry,
            **self._signing(expiry),
        )
        return f"{blob.url}?{sas}"

    def node_write_container_url(self, container: str, ttl: dt.timedelta) -> str:
        """A create/write-only URL for a container, valid for `ttl` (what task output files need)."""
        expiry = dt.datetime.now(dt.UTC) + ttl
        client = self.service.get_container_client(container)
        sas = generate_container_sas(
            self.account_name, container, permission=ContainerSasPermissions(write=True, create=True),
            expiry=expiry, **self._signing(expiry),
        )
        return f"{client.url}?{sas}"

    def plain_blob_url(self, container: str, name: str) -> str:
        return self.service.get_blob_client(container, name).url

    def plain_container_url(self, container: str) -> str:
        return self.service.get_container_client(container).url


def _json_body(record: dict[str, Any]) -> bytes:
    return json.dumps(record, indent=2, ensure_ascii=False, sort_keys=True).encode()


def _json_content() -> Any:
    from azure.storage.blob import ContentSettings

    return ContentSettings(content_type="application/json; charset=utf-8")



def _info(item: Any) -> BlobInfo:
    return BlobInfo(item.name, item.etag, item.last_modified, dict(item.metadata or {}), item.size)
