"""The app under the REAL Azure Functions Python worker (4.34, Python 3.12, as Azure runs it): index, load, invoke."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient

from devhost.azurite import Azurite
from devhost.media import make_mp4
from shared.adapters.storage import connection_client
from shared.domain import naming
from shared.settings import DEFAULTS
from tests.conftest import isolated, wait_until
from tests.support.media import held_seconds
from tests.support.realworker import RealWorker, require_real_worker
from tests.support.task_audit import TaskAudit, audit

FILES = 30
LOGGED_FILES = 5


@pytest.fixture
def real_worker(azurite: Azurite, tmp_path: Path) -> Iterator[Callable[..., RealWorker]]:
    """Starts real workers on the test Azurite (containers of their own) and the local gateway; stops each by PID."""
    require_real_worker()
    started: list[RealWorker] = []

    def start(**settings: str) -> RealWorker:
        worker = RealWorker(azurite, tmp_path / f"state{len(started)}", isolated(**settings)).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def peak_running(tasks: list[TaskAudit]) -> int:
    """The most task runs in progress at one moment, from each run's first to last recorded event."""
    edges = sorted((at, step) for t in tasks for run in t.runs()
                   for at, step in ((run[0]["at"], 1), (run[-1]["at"], -1)))
    peak = running = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def drop_and_load(worker: RealWorker, azurite: Azurite, tmp_path: Path, names: list[str]) -> ContainerClient:
    """Upload a one-second MP4 under each name (before any invocation), then load the functions; the output
    container."""
    service = connection_client(azurite.connection_string)
    inputs = service.get_container_client(worker.settings["INPUT_CONTAINER"])
    inputs.create_container()
    mp4 = make_mp4(tmp_path / "one.mp4", 1.0, size="160x120").read_bytes()
    for name in names:
        inputs.upload_blob(name, mp4)
    worker.load()
    return service.get_container_client(worker.settings["OUTPUT_CONTAINER"])


def tick_until_converted(worker: RealWorker, outputs: ContainerClient, count: int, timeout: float) -> None:
    """Fire the monitor timer each second, as the host does, while the tasks run in the worker, until `count` MP3s."""

    def all_mp3s() -> bool:
        assert [r["status"] for r in worker.invoke({"fn": "monitor"})] == ["Success"]
        return len([b for b in outputs.list_blob_names() if b.endswith(".mp3")]) >= count

    wait_until(all_mp3s, timeout, interval=1.0, what=f"{count} MP3s")


def test_the_worker_indexes_and_loads_the_three_functions(real_worker: Callable[..., RealWorker]) -> None:
    worker = real_worker()
    assert worker.load() == ["monitor", "reconcile", "submit"]
    assert [r["status"] for r in worker.invoke({"fn": "monitor"})] == ["Success"]


def test_a_burst_of_first_invocations_builds_the_app_once_and_converts_every_file(
        real_worker: Callable[..., RealWorker], azurite: Azurite, tmp_path: Path) -> None:
    """60 first invocations in flight at once (30 MP4s, each trigger delivered twice), on the worker's thread pool:
    every one succeeds, every file gets one task and one whole MP3, and no more tasks run at once than the one slot
    LOCAL_TASK_SLOTS gives (each dependency build used to start a dispatcher of its own, with slots of its own)."""
    worker = real_worker(LOCAL_TASK_SLOTS="1")
    names = [f"burst/{i:02d}.mp4" for i in range(FILES)]
    outputs = drop_and_load(worker, azurite, tmp_path, names)

    results = worker.invoke(*[{"fn": "submit", "blob": name} for name in names for _ in range(2)])

    failures = [r["exception"] for r in results if r["status"] != "Success"]
    assert not failures and len(results) == 2 * FILES, failures
    tick_until_converted(worker, outputs, FILES, 180)
    tasks = audit(worker.state_dir, DEFAULTS["BATCH_JOB_ID"])
    assert sorted(t.name for t in tasks) == names
    assert all(len(t.runs()) == 1 for t in tasks), [t.history for t in tasks if len(t.runs()) > 1]
    assert peak_running(tasks) == 1
    assert sorted(outputs.list_blob_names()) == sorted(naming.output_name(n) for n in names)
    for name in names:
        mp3 = tmp_path / naming.output_name(name)
        mp3.parent.mkdir(parents=True, exist_ok=True)
        mp3.write_bytes(outputs.download_blob(naming.output_name(name)).readall())
        assert abs((held_seconds(mp3) or 0.0) - 1.0) < 0.1, name


def test_application_insights_gets_the_apps_events_and_the_sdks_warnings_not_every_request(
        real_worker: Callable[..., RealWorker], azurite: Azurite, tmp_path: Path) -> None:
    """The worker sets the root logger to INFO and forwards every record: azure-core's per-request INFO lines must
    not reach the host, the app's own events must. Prints the bytes forwarded per file (docs/deploy-azure.md)."""
    worker = real_worker()
    names = [f"logged/{i}.mp4" for i in range(LOGGED_FILES)]
    outputs = drop_and_load(worker, azurite, tmp_path, names)
    loaded = len(worker.logs())

    assert {r["status"] for r in worker.invoke(*[{"fn": "submit", "blob": name} for name in names])} == {"Success"}
    tick_until_converted(worker, outputs, LOGGED_FILES, 120)
    assert [r["status"] for r in worker.invoke({"fn": "reconcile"})] == ["Success"]

    forwarded = worker.logs()[loaded:]
    size = sum(len(r["message"].encode()) + len(r["category"].encode()) for r in forwarded)
    print(f"\nforwarded after load: {len(forwarded)} records, {size} bytes for {LOGGED_FILES} files "
          f"({size / LOGGED_FILES:.0f} bytes a file; the app's own: "
          f"{sum(len(r['message'].encode()) for r in forwarded if r['category'].startswith('mp3pipe'))} bytes)")
    sdk_chatter = [(r["category"], r["level"]) for r in forwarded
                   if r["category"].startswith("azure.") and r["level"] in ("Trace", "Debug", "Information")]
    assert not sdk_chatter, f"{len(sdk_chatter)} azure.* records below Warning, e.g. {sdk_chatter[:3]}"
    events = [json.loads(r["message"])["event"] for r in forwarded if r["category"] == "mp3pipe"]
    assert events.count("submitted") == LOGGED_FILES and {"monitor", "reconcile"} <= set(events), events
