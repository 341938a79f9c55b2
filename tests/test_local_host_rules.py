"""The local host's documented rules (poison, receipts by name+ETag, listing backoff, timers) on probe apps."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob
import pytest
from azure.core.exceptions import ResourceNotFoundError

from devhost.host import RECEIPTS_CONTAINER, LocalHost
from shared.adapters.storage import connection_client
from tests.conftest import wait_until


class Probe:
    """A one-function app like ours (an Event Grid blob trigger taking a BlobClient) that counts its calls."""

    def __init__(self, *, fail: bool) -> None:
        self.fail = fail
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def app(self) -> func.FunctionApp:
        """A fresh app each time (the host indexes an app once, as a new host process would)."""
        app = func.FunctionApp()

        @app.blob_trigger(arg_name="client", path="%INPUT_CONTAINER%/{name}", connection="AzureWebJobsStorage",
                          source=func.BlobSource.EVENT_GRID)
        def probe(client: blob.BlobClient) -> None:
            with self.lock:
                self.calls.append((client.blob_name, client.get_blob_properties().etag))
            if self.fail:
                raise RuntimeError("the probe fails on purpose")

        return app


@pytest.fixture
def container(azurite, monkeypatch) -> Iterator[object]:
    name = f"host-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("INPUT_CONTAINER", name)
    service = connection_client(azurite.connection_string)
    client = service.get_container_client(name)
    client.create_container()
    yield client
    client.delete_container()


def _host(probe: Probe, **kwargs: object) -> LocalHost:
    return LocalHost(probe.app(), host_id=f"test-{uuid.uuid4().hex[:8]}", timer_on_start=False,
                     **kwargs).start()  # type: ignore[arg-type]


def test_a_blob_whose_function_fails_5_times_is_recorded_as_poison_and_not_invoked_again(azurite, container,
                                                                                          caplog):
    probe = Probe(fail=True)
    etag = _put(container, "bad/one.mp4", b"x")
    host = _host(probe)
    receipts = connection_client(azurite.connection_string).get_container_client(RECEIPTS_CONTAINER)
    poison = receipts.get_blob_client(f"webjobs-blobtrigger-poison/probe/{quote('bad/one.mp4', safe='')}-"
                                      f"{etag.strip(chr(34))}")
    try:
        wait_until(lambda: _exists(poison), 60, interval=0.2, what="the poison record")
        host.stop_event.wait(3.0)  # three more listings: none invokes it again
    finally:
        host.stop()
    assert len(probe.calls) == 5
    assert '"BlobName": "bad/one.mp4"' in poison.download_blob().readall().decode()
    assert any(r.levelno == logging.ERROR and "is poison after 5 failed invocations" in r.getMessage()
               for r in caplog.records)


def test_a_restarted_host_does_not_trigger_a_blob_again_but_a_new_version_does(container):
    probe = Probe(fail=False)
    container.upload_blob("a.mp4", b"x")
    host_id = f"test-{uuid.uuid4().hex[:8]}"
    first = LocalHost(probe.app(), host_id=host_id, timer_on_start=False).start()
    try:
        wait_until(lambda: len(probe.calls) == 1, 30, what="the first invocation")
    finally:
        first.stop()
    again = LocalHost(probe.app(), host_id=host_id, timer_on_start=False).start()
    try:
        wait_until(lambda: again.listings >= 2, 30, what="two listings after the restart")
        assert len(probe.calls) == 1  # its receipt (name + ETag) was read back
        etag = _put(container, "a.mp4", b"y")
        wait_until(lambda: len(probe.calls) == 2, 30, what="the new version's invocation")
    finally:
        again.stop()
    assert probe.calls[1] == ("a.mp4", etag)


def test_the_background_listing_backs_off_from_1_s_while_nothing_changes_and_starts_over_on_a_find(container,
                                                                                                   caplog):
    caplog.set_level(logging.INFO, logger="mp3pipe.devhost")
    probe = Probe(fail=False)
    host = _host(probe)  # the defaults: 1 s, doubling up to 60 s

    try:
        wait_until(lambda: "4" in waits(caplog), 15, what="the listing backing off to 4 s")
        assert waits(caplog) == ["2", "4"]
        container.upload_blob("quiet.mp4", b"x")  # no event: only the listing can find it
        wait_until(lambda: probe.calls, 15, what="the listing finding the blob")
        wait_until(lambda: len(waits(caplog)) >= 4, 15, what="the listing backing off again")
    finally:
        host.stop()
    assert waits(caplog)[:4] == ["2", "4", "found", "2"]


def test_the_monitor_timer_runs_at_start_and_then_every_minute_at_second_0_by_default(monkeypatch):
    """MONITOR_SCHEDULE's default (`0 * * * * *`), which every other test overrides, driven by the local host."""
    from shared.settings import DEFAULTS

    monkeypatch.setenv("MONITOR_SCHEDULE", DEFAULTS["MONITOR_SCHEDULE"])
    fired: list[tuple[dt.datetime, bool]] = []
    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="%MONITOR_SCHEDULE%", run_on_startup=False, use_monitor=True)
    def monitor(timer: func.TimerRequest) -> None:
        fired.append((dt.datetime.now(dt.UTC), timer.past_due))

    host = LocalHost(app, host_id=f"test-{uuid.uuid4().hex[:8]}").start()
    try:
        wait_until(lambda: len(fired) >= 2, 70, interval=0.2, what="a run at start and one on the schedule")
    finally:
        host.stop()
    (_, at_start), (on_time, past_due) = fired[:2]
    assert at_start and not past_due  # the first run is the one at start
    assert on_time.second == 0 and on_time.microsecond < 900_000


WAIT = re.compile(r"found nothing new: the next in (\d+) s|found \d+ blob\(s\) no event announced")


def waits(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The listing's log, in order: each backed-off wait in seconds, and "found" for each find."""
    found = [WAIT.search(r.getMessage()) for r in caplog.records]
    return [m.group(1) or "found" for m in found if m]


def _put(container: object, name: str, data: bytes) -> str:
    return container.get_blob_client(name).upload_blob(data, overwrite=True)["etag"]  # type: ignore[attr-defined]


def _exists(client: object) -> bool:
    try:
        client.get_blob_properties()  # type: ignore[attr-defined]
    except ResourceNotFoundError:
        return False
    return True
