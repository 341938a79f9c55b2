"""Event Grid `Microsoft.Storage.BlobCreated` events (Event Grid schema), and posting them to a local host.

In Azure, Event Grid posts these to the Functions host's blob extension webhook. Azurite raises no events, so the
project's own upload paths (`mp3pipe drop`, `make run`, `LocalPipeline.drop`) post one per uploaded blob to the
local host, which has written where it listens to `<LOCAL_STATE_DIR>/host.json`. Posting is best effort: a blob
whose event is lost is still found by the host's background listing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger("mp3pipe.eventgrid")
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
WEBHOOK_PATH = "/runtime/webhooks/blobs"
DISCOVERY_FILE = "host.json"
DELIVERY_BACKOFF = (0.1, 0.3, 1.0, 0.0)  # pause after each failed delivery attempt; the last attempt gives up


def blob_created(blob_url: str, etag: str, *, size: int, content_type: str = "video/mp4",
                 api: str = "PutBlockList", account: str = "devstoreaccount1") -> dict[str, Any]:
    """One BlobCreated event for a blob version, shaped as Event Grid delivers it (Event Grid schema)."""
    from azure.storage.blob import BlobClient

    blob = BlobClient.from_blob_url(blob_url.split("?", 1)[0])
    return {
        "topic": f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/"
                 f"Microsoft.Storage/storageAccounts/{account}",
        "subject": f"/blobServices/default/containers/{blob.container_name}/blobs/{blob.blob_name}",
        "eventType": BLOB_CREATED,
        "eventTime": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "id": str(uuid.uuid4()),
        "data": {
            "api": api, "clientRequestId": str(uuid.uuid4()), "requestId": str(uuid.uuid4()),
            "eTag": etag.strip('"'), "contentType": content_type, "contentLength": size, "blobType": "BlockBlob",
            "url": blob_url.split("?", 1)[0], "sequencer": f"{uuid.uuid4().int:032d}"[:32],
            "storageDiagnostics": {"batchId": str(uuid.uuid4())},
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }


def webhook_url(base: str, function: str) -> str:
    """The blob extension's webhook for one function, as the Functions host serves it for a Python app."""
    return f"{base}{WEBHOOK_PATH}?functionName=Host.Functions.{function}"


def post(url: str, events: list[dict[str, Any]], *, event_type: str = "Notification",
         timeout: float = 5.0) -> tuple[int, bytes]:
    """POST events as Event Grid does (JSON array, `aeg-event-type` header); returns (status, body)."""
    request = urllib.request.Request(url, data=json.dumps(events).encode(), method="POST", headers={
        "Content-Type": "application/json", "aeg-event-type": event_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback URL we wrote
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# -- the local host's address ---------------------------------------------------------------------------------------
def write_discovery(state_dir: Path, base: str, storage_url: str, functions: dict[str, str]) -> Path:
    """Where the local host listens (base URL), for which storage, and each blob function's container."""
    path = Path(state_dir) / DISCOVERY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"webhook": base, "storage": storage_url.rstrip("/"), "functions": functions,
                               "pid": os.getpid()}))
    tmp.replace(path)
    return path


def remove_discovery(state_dir: Path) -> None:
    path = Path(state_dir) / DISCOVERY_FILE
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


class Notifier:
    """Posts a BlobCreated event per uploaded blob to the local host found in the state folder, if any."""

    def __init__(self, state_dir: Path | str) -> None:
        self.path = Path(state_dir) / DISCOVERY_FILE

    def host_info(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def blob_created(self, blob_url: str, etag: str, size: int, *, api: str = "PutBlockList") -> bool:
        """Tell the local host about one new blob version; False when no local host takes it (nothing lost:
        its background listing will find the blob)."""
        host = self.host_info()
        if not host:
            return False
        plain = blob_url.split("?", 1)[0]
        storage = str(host.get("storage", ""))
        if not storage or not plain.startswith(storage + "/"):
            return False  # another storage account (Azure: Event Grid does this)
        container = plain[len(storage) + 1:].split("/", 1)[0]
        names = [fn for fn, c in dict(host.get("functions", {})).items() if c == container]
        delivered = False
        for fn in names:
            event = blob_created(plain, etag, size=size, api=api)
            delivered = self._deliver(webhook_url(str(host["webhook"]), fn), event) or delivered
        return delivered

    @staticmethod
    def _deliver(url: str, event: dict[str, Any]) -> bool:
        """POST one event, retried a few times on a refused/reset connection or a 5xx (Event Grid retries too)."""
        for attempt, pause in enumerate(DELIVERY_BACKOFF):
            try:
                status, _ = post(url, [event])
            except OSError as exc:
                status, why = 0, type(exc).__name__
            else:
                why = f"HTTP {status}"
                if status < 500:
                    return status == 202
            if attempt == len(DELIVERY_BACKOFF) - 1:
                log.info("local host did not take the event (%s); its listing will find the blob", why)
                return False
            time.sleep(pause)
        return False
