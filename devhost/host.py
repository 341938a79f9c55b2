"""A local stand-in for the Azure Functions host: drives the app's own registered functions.

It imports `function_app.app`, reads each function's trigger from the app's binding metadata, watches the
blob trigger's container (receipts keyed by name+ETag in `azure-webjobs-hosts`, like the real host, so a
restart does not re-trigger; after 5 failed invocations the blob is recorded as poison) and calls the timer
function on its NCRONTAB schedule. Run it with `python -m devhost.host`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

log = logging.getLogger("mp3pipe.devhost")
REPO = Path(__file__).resolve().parents[1]
RECEIPTS_CONTAINER = "azure-webjobs-hosts"
MAX_DEQUEUE = 5  # the real host's maxDequeueCount for blob triggers
LISTING_REST = 1.0  # the watcher rests at least as long as its last listing took


def local_settings_values(path: Path | None = None) -> dict[str, str]:
    """local.settings.json "Values" (else the sample's), as `func start` reads them."""
    path = path or REPO / "local.settings.json"
    if not path.exists():
        path = REPO / "local.settings.sample.json"
    return {key: str(value) for key, value in json.loads(path.read_text()).get("Values", {}).items()}


def load_local_settings(path: Path | None = None) -> None:
    """Put local.settings.json "Values" into the environment (existing variables win), like `func start`."""
    for key, value in local_settings_values(path).items():
        os.environ.setdefault(key, value)


def resolve(expr: str) -> str:
    """Binding expressions: %SETTING% -> the app setting's value."""
    out = expr
    while "%" in out:
        start = out.index("%")
        end = out.index("%", start + 1)
        name = out[start + 1:end]
        if name not in os.environ:
            raise KeyError(f"binding expression {expr!r} names app setting {name}, which is not set")
        out = out[:start] + os.environ[name] + out[end + 1:]
    return out


@dataclass
class BlobTriggerFn:
    name: str
    fn: Any
    arg: str
    container: str
    prefix: str
    connection: str
    binding: dict[str, Any]


@dataclass
class TimerFn:
    name: str
    fn: Any
    arg: str
    schedule: str
    binding: dict[str, Any]


def index(app: Any) -> tuple[list[BlobTriggerFn], list[TimerFn]]:
    """The app's functions and triggers, read from its own binding metadata."""
    blobs: list[BlobTriggerFn] = []
    timers: list[TimerFn] = []
    for f in app.get_functions():
        trigger = f.get_trigger()
        spec = trigger.get_dict_repr()
        user_fn = f.get_user_function()
        if spec["type"] == "blobTrigger":
            path = resolve(spec["path"])
            container, _, rest = path.partition("/")
            prefix = rest.split("{", 1)[0]
            blobs.append(BlobTriggerFn(f.get_function_name(), user_fn, spec["name"], container, prefix,
                                       spec["connection"], spec))
        elif spec["type"] == "timerTrigger":
            timers.append(TimerFn(f.get_function_name(), user_fn, spec["name"], resolve(spec["schedule"]), spec))
        else:
            log.warning("function %s has a %s trigger, which the local host does not drive", f.get_function_name(),
                        spec["type"])
    return blobs, timers


def blob_client_arg(connection: str, container: str, name: str) -> Any:
    """Build the trigger's BlobClient exactly the way the Python worker does for SDK-type bindings."""
    from azurefunctions.extensions.base import Datum
    from azurefunctions.extensions.bindings.blob import BlobClient
    from azurefunctions.extensions.bindings.blob.blobClientConverter import BlobClientConverter

    content = json.dumps({"Connection": connection, "ContainerName": container, "BlobName": name})
    mbd = types.SimpleNamespace(version="1.0", source="AzureStorageBlobs", content_type="application/json",
                                content=content)
    client = BlobClientConverter.decode(Datum(value=mbd, type="model_binding_data"), trigger_metadata={},
                                        pytype=BlobClient)
    if client is None:
        raise RuntimeError("the blob SDK-type converter returned no client")
    return client


def _service(connection: str) -> BlobServiceClient:
    value = os.environ.get(connection)
    if not value:
        raise KeyError(f"connection setting {connection} is not set")
    return BlobServiceClient.from_connection_string(value)


class LocalHost:
    """Drives the registered functions: blob trigger by watching Azurite, timers by NCRONTAB."""

    def __init__(self, app: Any, *, host_id: str = "mp3pipe-local", poll_interval: float = 0.2,
                 workers: int = 8, timer_on_start: bool = True) -> None:
        self.blob_fns, self.timer_fns = index(app)
        self.host_id = host_id
        self.poll_interval = poll_interval
        self.timer_on_start = timer_on_start
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="invoke")
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.invocations = 0

    # -- blob trigger --------------------------------------------------------------------------------------------
    def _receipt_name(self, f: BlobTriggerFn, etag: str, name: str) -> str:
        return f"blobreceipts/{self.host_id}/{f.name}/{etag.strip(chr(34))}/{f.container}/{name}"

    def _watch(self, f: BlobTriggerFn) -> None:
        service = _service(f.connection)
        receipts = service.get_container_client(RECEIPTS_CONTAINER)
        try:
            receipts.create_container()
        except ResourceExistsError:
            pass
        prefix = f"blobreceipts/{self.host_id}/{f.name}/"
        done: set[str] = {b.name for b in receipts.list_blobs(name_starts_with=prefix)}
        in_flight: set[str] = set()
        failures: dict[str, int] = {}
        retry_at: dict[str, float] = {}
        lock = threading.Lock()
        container = service.get_container_client(f.container)
        log.info("watching container %s for function %s (%d receipts)", f.container, f.name, len(done))

        def invoke(name: str, etag: str, receipt: str) -> None:
            try:
                f.fn(**{f.arg: blob_client_arg(f.connection, f.container, name)})
            except Exception as exc:  # noqa: BLE001 - the host records the failure and retries, like Azure
                with lock:
                    failures[receipt] = failures.get(receipt, 0) + 1
                    count = failures[receipt]
                    retry_at[receipt] = time.monotonic() + min(30.0, 0.5 * 2 ** count)
                log.warning("function %s failed for %r (try %d/%d): %s", f.name, name, count, MAX_DEQUEUE, exc)
                if count >= MAX_DEQUEUE:
                    self._poison(receipts, f, name, etag, str(exc))
                    self._write_receipt(receipts, receipt)
                    with lock:
                        done.add(receipt)
            else:
                self._write_receipt(receipts, receipt)
                with lock:
                    done.add(receipt)
            finally:
                with lock:
                    in_flight.discard(receipt)
                self.invocations += 1

        while not self.stop_event.is_set():
            now = time.monotonic()
            try:
                for blob in container.list_blobs(name_starts_with=f.prefix or None):
                    receipt = self._receipt_name(f, blob.etag, blob.name)
                    with lock:
                        if receipt in done or receipt in in_flight or retry_at.get(receipt, 0) > now:
                            continue
                        in_flight.add(receipt)
                    self.pool.submit(invoke, blob.name, blob.etag, receipt)
            except Exception as exc:  # noqa: BLE001 - storage may be restarting; keep watching
                log.warning("listing %s failed: %s", f.container, exc)
                self.stop_event.wait(1.0)
            # A listing costs us and Azurite CPU in proportion to the container's blobs (~0.2 CPU-s per 1,000),
            # on the cores ffmpeg needs: rest at least LISTING_REST times as long as it took (CPU share <= 50%).
            self.stop_event.wait(max(self.poll_interval, LISTING_REST * (time.monotonic() - now)))

    @staticmethod
    def _write_receipt(receipts: Any, receipt: str) -> None:
        receipts.upload_blob(receipt, b"", overwrite=True)

    def _poison(self, receipts: Any, f: BlobTriggerFn, name: str, etag: str, error: str) -> None:
        """Like the real host's `webjobs-blobtrigger-poison` queue message, kept as a blob."""
        record = {"FunctionId": f.name, "BlobType": "BlockBlob", "ContainerName": f.container, "BlobName": name,
                  "ETag": etag, "Error": error[:2000], "At": dt.datetime.now(dt.UTC).isoformat()}
        receipts.upload_blob(f"webjobs-blobtrigger-poison/{f.name}/{quote(name, safe='')}-{etag.strip(chr(34))}",
                             json.dumps(record).encode(), overwrite=True)
        log.error("blob %r is poison after %d failed invocations of %s", name, MAX_DEQUEUE, f.name)

    # -- timer ---------------------------------------------------------------------------------------------------
    def _timer(self, t: TimerFn) -> None:
        import azure.functions as func
        from azure.functions.timer import TimerRequest
        from croniter import croniter

        def fire(past_due: bool) -> None:
            request: func.TimerRequest = TimerRequest(past_due=past_due)
            try:
                t.fn(**{t.arg: request})
            except Exception:  # noqa: BLE001
                log.exception("timer function %s failed", t.name)

        if self.timer_on_start:
            fire(True)
        it = croniter(t.schedule, dt.datetime.now(dt.UTC), second_at_beginning=True)
        while not self.stop_event.is_set():
            nxt = it.get_next(dt.datetime)
            delay = (nxt - dt.datetime.now(dt.UTC)).total_seconds()
            if delay < 0:
                it = croniter(t.schedule, dt.datetime.now(dt.UTC), second_at_beginning=True)
                continue
            if self.stop_event.wait(delay):
                break
            fire(False)

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> LocalHost:
        for t in self.timer_fns:
            self.threads.append(threading.Thread(target=self._timer, args=(t,), name=f"timer-{t.name}", daemon=True))
        for f in self.blob_fns:
            self.threads.append(threading.Thread(target=self._watch, args=(f,), name=f"watch-{f.name}", daemon=True))
        for th in self.threads:
            th.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for th in self.threads:
            th.join(timeout=10)
        self.pool.shutdown(wait=True, cancel_futures=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run mp3pipe's functions locally (stand-in for `func start`).")
    parser.add_argument("--poll-interval", type=float, default=0.2, help="seconds between container listings")
    parser.add_argument("--no-timer-on-start", action="store_true", help="wait for the first scheduled tick")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stdout)
    logging.getLogger("azure").setLevel(logging.WARNING)
    load_local_settings()
    sys.path.insert(0, str(REPO))
    try:
        app = importlib.import_module("function_app").app
        from shared import bootstrap

        bootstrap.deps()  # settings, storage and containers checked now, not at the first file
    except ValueError as exc:  # SettingsError: say which setting, not a stack trace
        print(str(exc), file=sys.stderr)
        log.error("%s", exc)
        return 2
    host = LocalHost(app, poll_interval=args.poll_interval, timer_on_start=not args.no_timer_on_start).start()
    log.info("local host started: blob functions %s, timers %s",
             [f.name for f in host.blob_fns], [f"{t.name} ({t.schedule})" for t in host.timer_fns])
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    log.info("stopping")
    host.stop()
    gateway = bootstrap.deps().gateway
    close = getattr(gateway, "close", None)
    if close:
        close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
