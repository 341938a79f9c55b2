"""The local host's blob extension webhook: Event Grid events at /runtime/webhooks/blobs?functionName=Host.Functions.X.

It answers as the Functions host's blob extension does: the `aeg-event-type` header decides. `SubscriptionValidation`
echoes the validation code (200), `Notification` hands each BlobCreated event's blob (container and name parsed
from `data.url`, as the extension's BlobUriBuilder does; the name is data, never a path or a command) to the
function and answers 202, `Unsubscribe` gets 202, anything else 400. An unknown function name is answered 202 too
(the real host queues the message and finds no function for it later), but logged as an error here.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mp3pipe.eventgrid import BLOB_CREATED, WEBHOOK_PATH

log = logging.getLogger("mp3pipe.devhost")
MAX_BODY = 1024 * 1024  # Event Grid delivers at most 1 MB per batch
FUNCTION_PREFIX = "Host.Functions."

# (function name, container, blob name, etag) -> whether the function takes blobs from that container
OnBlob = Callable[[str, str, str, str], bool]


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog is 5: a burst of uploads (41 at once in bench/pipeline.py) had connections
    # reset, and their events lost until the background listing came round.
    request_queue_size = 1024
    daemon_threads = True


class BlobWebhook:
    """A ThreadingHTTPServer on 127.0.0.1 that turns BlobCreated events into calls of `on_blob`."""

    def __init__(self, port: int, functions: set[str], on_blob: OnBlob) -> None:
        self.functions = functions
        self.on_blob = on_blob
        self.events = 0
        handler = type("Handler", (_Handler,), {"webhook": self})
        self.server = _Server(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.5},
                                       name="webhook", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> BlobWebhook:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what the blob extension does with a request -------------------------------------------------------------
    def handle(self, path: str, query: str, event_type: str, body: bytes) -> tuple[int, dict[str, Any] | None]:
        if path.rstrip("/") != WEBHOOK_PATH:
            return 404, None
        function = (parse_qs(query).get("functionName") or [""])[0]
        try:
            events = json.loads(body)
        except ValueError:
            return 400, {"error": "the body is not JSON"}
        if isinstance(events, dict):
            events = [events]
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            return 400, {"error": "the body is not an array of events"}
        kind = event_type.lower()
        if kind == "subscriptionvalidation":
            code = (events[0].get("data") or {}).get("validationCode") if events else None
            if not isinstance(code, str):
                return 400, {"error": "no validationCode"}
            log.info("Event Grid subscription validated for %s", function)
            return 200, {"validationResponse": code}
        if kind == "unsubscribe":
            return 202, None
        if kind != "notification":
            return 400, {"error": "unknown aeg-event-type"}
        name = function.removeprefix(FUNCTION_PREFIX)
        if not function.startswith(FUNCTION_PREFIX) or name not in self.functions:
            # The real host answers 202 and drops the message later; say loudly that nothing will run.
            log.error("Event Grid webhook: no blob-trigger function %r (known: %s); %d event(s) accepted and dropped, "
                      "as the Functions host would. Check the subscription's endpoint.",
                      function, ", ".join(f"{FUNCTION_PREFIX}{f}" for f in sorted(self.functions)), len(events))
            return 202, None
        for event in events:
            self._one(name, event)
        return 202, None

    def _one(self, function: str, event: dict[str, Any]) -> None:
        from azure.storage.blob import BlobClient

        self.events += 1
        if event.get("eventType") != BLOB_CREATED:
            log.info("Event Grid webhook: ignored a %r event", event.get("eventType"))
            return
        data = event.get("data") or {}
        url, etag = data.get("url"), data.get("eTag")
        if not isinstance(url, str) or not isinstance(etag, str):
            log.warning("Event Grid webhook: a BlobCreated event without data.url or data.eTag was ignored")
            return
        try:
            blob = BlobClient.from_blob_url(url)
            container, name = blob.container_name, blob.blob_name
        except ValueError:
            log.warning("Event Grid webhook: a BlobCreated event with an unusable URL was ignored")
            return
        if not self.on_blob(function, container, name, f'"{etag.strip(chr(34))}"'):
            log.warning("Event Grid webhook: %s does not watch container %r; the event was ignored", function,
                        container)


class _Handler(BaseHTTPRequestHandler):
    webhook: BlobWebhook
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"error": "more than 1 MB of events"})
            return
        body = self.rfile.read(length)
        parts = urlsplit(self.path)
        try:
            status, payload = self.webhook.handle(parts.path, parts.query, self.headers.get("aeg-event-type", ""),
                                                  body)
        except Exception:  # noqa: BLE001 - a bug here must not kill the server; Event Grid retries on 5xx
            log.exception("Event Grid webhook failed")
            status, payload = 500, None
        self._send(status, payload)

    def do_GET(self) -> None:  # noqa: N802
        self._send(405 if urlsplit(self.path).path.rstrip("/") == WEBHOOK_PATH else 404, None)

    def _send(self, status: int, payload: dict[str, Any] | None) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("webhook %s", format % args)
