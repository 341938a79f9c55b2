"""A local stand-in for the Azure Functions host: drives the app's own registered functions.

It imports `function_app.app`, reads each function's trigger from the app's binding metadata, watches the
blob trigger's container (receipts keyed by name+ETag in `azure-webjobs-hosts`, named as the real host's scan
source names them, so the listing does not re-trigger after a restart; the real host's Event Grid source keeps
none; after 5 failed invocations the blob is recorded as poison) and calls the timer
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

from shared.adapters.storage import connection_client
from shared.settings_file import load_local_settings

log = logging.getLogger("mp3pipe.devhost")
REPO = Path(__file__).resolve().parents[1]
RECEIPTS_CONTAINER = "azure-webjobs-hosts"
HOST_ID = "mp3pipe-local"
MAX_DEQUEUE = 5  # the real host's maxDequeueCount for blob triggers
LISTING_DUTY = 50.0  # the background listing rests at least 50x as long as it took (<= 2% of the time)


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


def receipt_name(host_id: str, function: str, container: str, etag: str, name: str) -> str:
    """The blob receipt of one blob version, named as the real host names it in azure-webjobs-hosts."""
    return f"blobreceipts/{host_id}/{function}/{etag.strip(chr(34))}/{container}/{name}"


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
    return connection_client(value)


class _Trigger:
    """One blob-trigger function's bookkeeping: receipts done, invocations in flight, failures and retries."""

    def __init__(self, host: LocalHost, f: BlobTriggerFn) -> None:
        self.host, self.f = host, f
        self.lock = threading.Lock()
        self.done: set[str] = set()
        self.in_flight: set[str] = set()
        self.failures: dict[str, int] = {}
        self.ready = threading.Event()
        self.receipts: Any = None

    def open(self) -> None:
        service = _service(self.f.connection)
        self.receipts = service.get_container_client(RECEIPTS_CONTAINER)
        try:
            self.receipts.create_container()
        except ResourceExistsError:
            pass
        prefix = f"blobreceipts/{self.host.host_id}/{self.f.name}/"
        self.done = {b for b in self.receipts.list_blob_names(name_starts_with=prefix)}
        self.ready.set()

    def offer(self, name: str, etag: str, *, event: bool = False) -> bool:
        """Invoke the function for this blob version unless it has a receipt or is on its way; True if new.

        Blobs announced by an event run on their own workers: they never queue behind a backlog the listing found.
        """
        if not name.startswith(self.f.prefix):
            return False
        receipt = self.host._receipt_name(self.f, etag, name)
        with self.lock:
            if receipt in self.done or receipt in self.in_flight:
                return False
            self.in_flight.add(receipt)
        (self.host.event_pool if event else self.host.pool).submit(self._invoke, name, etag, receipt)
        return True

    def _invoke(self, name: str, etag: str, receipt: str) -> None:
        f, host = self.f, self.host
        retry_in = 0.0
        client = None
        try:
            client = blob_client_arg(f.connection, f.container, name)
            f.fn(**{f.arg: client})
        except Exception as exc:  # noqa: BLE001 - the host records the failure and retries, like Azure
            with self.lock:
                count = self.failures[receipt] = self.failures.get(receipt, 0) + 1
            log.warning("function %s failed for %r (try %d/%d): %s", f.name, name, count, MAX_DEQUEUE, exc)
            if count >= MAX_DEQUEUE:
                host._poison(self.receipts, f, name, etag, str(exc))
                self._receipt(receipt)
            else:
                retry_in = min(30.0, 0.5 * 2 ** count)
        else:
            self._receipt(receipt)
        finally:
            if client is not None:
                client.close()  # the binding's client lives for one invocation: its connection goes with it
            with self.lock:
                self.in_flight.discard(receipt)
            host.invocations += 1
        if retry_in and not host.stop_event.is_set():
            timer = threading.Timer(retry_in, self.offer, args=(name, etag))
            timer.daemon = True
            timer.start()

    def _receipt(self, receipt: str) -> None:
        try:
            self.host._write_receipt(self.receipts, receipt)
        finally:
            with self.lock:
                self.done.add(receipt)


class LocalHost:
    """Drives the registered functions: blob trigger by Event Grid events and a background listing, timers by
    NCRONTAB."""

    def __init__(self, app: Any, *, host_id: str = HOST_ID, poll_interval: float = 1.0,
                 max_poll_interval: float = 60.0, workers: int = 8, timer_on_start: bool = True,
                 events_port: int | None = None) -> None:
        self.blob_fns, self.timer_fns = index(app)
        self.host_id = host_id
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timer_on_start = timer_on_start
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="invoke-listed")  # background work
        self.event_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="invoke-event")
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.invocations = 0
        self.listings = 0
        self.triggers = {f.name: _Trigger(self, f) for f in self.blob_fns}
        self.webhook = None
        if events_port is not None:
            from devhost.webhook import BlobWebhook

            self.webhook = BlobWebhook(events_port, set(self.triggers), self._event)

    # -- blob trigger --------------------------------------------------------------------------------------------
    def _receipt_name(self, f: BlobTriggerFn, etag: str, name: str) -> str:
        return receipt_name(self.host_id, f.name, f.container, etag, name)

    def _event(self, function: str, container: str, name: str, etag: str) -> bool:
        """A BlobCreated event from the webhook: invoke at once (the listing is only the safety net)."""
        trigger = self.triggers[function]
        if container != trigger.f.container:
            return False
        trigger.ready.wait(30)
        trigger.offer(name, etag, event=True)
        return True

    def _watch(self, f: BlobTriggerFn) -> None:
        """The local counterpart of the reconcile timer: list the container for blobs no event announced.

        It backs off while nothing changes (poll_interval doubling up to max_poll_interval) and rests at least
        LISTING_DUTY times as long as a listing took, so its cost stays small however many blobs the container
        keeps; events, not this listing, are what a dropped file's latency depends on.
        """
        trigger = self.triggers[f.name]
        while not self.stop_event.is_set():
            try:
                trigger.open()
                break
            except Exception as exc:  # noqa: BLE001 - storage may be restarting
                log.warning("reading receipts failed: %s", exc)
                self.stop_event.wait(1.0)
        container = _service(f.connection).get_container_client(f.container)
        log.info("watching container %s for function %s (%d receipts)", f.container, f.name, len(trigger.done))
        wait = self.poll_interval
        while not self.stop_event.is_set():
            began = time.monotonic()
            new = 0
            try:
                for blob in container.list_blobs(name_starts_with=f.prefix or None):
                    new += trigger.offer(blob.name, blob.etag)
                self.listings += 1
            except Exception as exc:  # noqa: BLE001 - storage may be restarting; keep watching
                log.warning("listing %s failed: %s", f.container, exc)
            took = time.monotonic() - began
            if new:
                log.info("the listing of %s found %d blob(s) no event announced", f.container, new)
            backed_off = 0 if new else min(self.max_poll_interval, wait * 2)
            if backed_off > wait:  # logged while it backs off, not at rest: a few lines after each find
                log.info("the listing of %s found nothing new: the next in %g s", f.container, backed_off)
            wait = backed_off or self.poll_interval
            self.stop_event.wait(max(wait, LISTING_DUTY * took))

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
        if self.webhook is not None:
            self.webhook.start()
        for t in self.timer_fns:
            self.threads.append(threading.Thread(target=self._timer, args=(t,), name=f"timer-{t.name}", daemon=True))
        for f in self.blob_fns:
            self.threads.append(threading.Thread(target=self._watch, args=(f,), name=f"watch-{f.name}", daemon=True))
        for th in self.threads:
            th.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self.webhook is not None:
            self.webhook.stop()
        deadline = time.monotonic() + timeout
        for th in self.threads:
            th.join(timeout=max(0.0, deadline - time.monotonic()))
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.event_pool.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run mp3pipe's functions locally (stand-in for `func start`).")
    parser.add_argument("--port", type=int, default=7071,
                        help="HTTP port on 127.0.0.1 for the blob extension's Event Grid webhook (func start: 7071)")
    parser.add_argument("--poll-interval", type=float, default=1.0,
                        help="seconds between background listings of the input container while blobs keep appearing")
    parser.add_argument("--max-poll-interval", type=float, default=60.0,
                        help="the background listing backs off to this while nothing changes")
    parser.add_argument("--no-timer-on-start", action="store_true", help="wait for the first scheduled tick")
    args = parser.parse_args(argv)
    # The root logger at INFO, as the Functions worker sets it: what the app itself then keeps (function_app.py
    # quiets the SDKs on import) is what Application Insights would receive.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stdout)
    load_local_settings()
    sys.path.insert(0, str(REPO))
    try:
        app = importlib.import_module("function_app").app
        from shared import bootstrap

        deps = bootstrap.deps()  # settings, storage and containers checked now, not at the first file
    except ValueError as exc:  # SettingsError: say which setting, not a stack trace
        print(str(exc), file=sys.stderr)
        log.error("%s", exc)
        return 2
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    try:
        host = LocalHost(app, poll_interval=args.poll_interval, max_poll_interval=args.max_poll_interval,
                         timer_on_start=not args.no_timer_on_start, events_port=args.port).start()
    except OSError as exc:
        print(f"the local host cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    from mp3pipe.eventgrid import remove_discovery, webhook_url, write_discovery

    state_dir = deps.settings.local_state_dir
    if host.webhook is not None:
        write_discovery(state_dir, host.webhook.base_url, deps.storage.service.url,
                        {f.name: f.container for f in host.blob_fns})
    log.info("local host started: blob functions %s (Event Grid webhook %s), timers %s",
             [f.name for f in host.blob_fns],
             [webhook_url(host.webhook.base_url, f.name) for f in host.blob_fns] if host.webhook else "off",
             [f"{t.name} ({t.schedule})" for t in host.timer_fns])
    stopped.wait()
    log.info("stopping")
    remove_discovery(state_dir)
    host.stop(timeout=2.0)
    close = getattr(deps.gateway, "close", None)
    if close:
        close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    # Invocations still retrying an unreachable storage must not hold the exit (ThreadPoolExecutor joins its
    # workers at exit): receipts and the task table make whatever they were doing safe to redo after a restart.
    os._exit(code)
