"""Whole monitor ticks on the Azure adapter (Batch REST stand-in) with real Azurite: request economy, reports."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from devhost.azurite import Azurite
from shared.adapters.storage import BlobStorage
from shared.domain import naming
from shared.domain.monitor_state import MONITOR_STATE_BLOB
from shared.ports.deps import Deps
from shared.run_deadline import function_timeout_seconds
from shared.settings import Settings
from shared.usecases import status
from shared.usecases.file_records import FileRecords
from shared.usecases.monitor import cleanup, outcomes
from shared.usecases.monitor.tick import TickResult, monitor_tick
from shared.usecases.submit import submit_blob
from tests.support.batch_standin import BatchStandin
from tests.support.fakes.clock import Clock
from tests.support.slow_storage import SlowStorage, slow_storage

pytest_plugins = ["tests.support.batch_fixtures"]

# Batch requests per monitor tick, filled in by test_a_tick_costs_the_same_with_10_5000_and_50000_finished_tasks.
REQUEST_COUNTS: dict[int, dict[str, int]] = {}

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
STDERR = (
    "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'input.mp4':\n"
    "  Stream #0:0[0x1](und): Video: h264 (avc1 / 0x31637661), yuv420p, 320x240, 25 fps\n"
    "Stream map '0:a:0' matches no streams.\n"
    "To ignore this, add a trailing '?' to the map.\n"
)
REPORT_KEYS = {"input", "etag", "task_id", "exit_code", "reason", "stderr_tail", "attempts", "finished_at"}


@dataclass
class World:
    standin: BatchStandin
    deps: Deps
    clock: Clock
    resizes: list[dict[str, object]] = field(default_factory=list)  # every resize body the ticks sent

    @property
    def settings(self) -> Settings:
        return self.deps.settings

    def tick(self) -> tuple[TickResult, list[tuple[str, str, int]]]:
        """One timer run; returns its result and the Batch requests it made (method, path, status)."""
        self.standin.clear_requests()
        result = monitor_tick(self.deps)
        self.resizes += [r.body for r in self.standin.sent("POST", f"/pools/{self.settings.pool_id}/resize")]
        return result, [(r.method, r.path, r.status) for r in self.standin.requests]

    def reports(self) -> list[str]:
        container = self.deps.storage.service.get_container_client(self.settings.output_container)
        return sorted(b.name for b in container.list_blobs() if b.name.endswith(naming.REPORT_SUFFIX))


def make_world(azurite: Azurite, standin: BatchStandin, **env: str) -> World:
    tag = uuid.uuid4().hex[:8]
    settings = Settings.from_env({
        "AzureWebJobsStorage": azurite.connection_string, "INPUT_CONTAINER": f"in-{tag}",
        "OUTPUT_CONTAINER": f"out-{tag}", "STATE_CONTAINER": f"st-{tag}", "BATCH_GATEWAY": "azure",
        "BATCH_ACCOUNT_URL": standin.url, "BATCH_MIN_NODES": "0", "BATCH_MAX_NODES": "10",
        "BATCH_SLOTS_PER_NODE": "1", **env,
    })
    storage = BlobStorage.from_settings(settings)
    storage.ensure_containers(settings.input_container, settings.output_container, settings.state_container)
    gateway = standin.gateway(pool_id=settings.pool_id, job_id=settings.job_id, vm_size=settings.vm_size,
                              slots_per_node=settings.slots_per_node, pool_identity_id=settings.pool_identity_id)
    clock = Clock(START)
    return World(standin, Deps(settings=settings, storage=storage, gateway=gateway, clock=clock), clock)


@pytest.fixture
def world(azurite: Azurite, batch_standin: BatchStandin) -> Iterator[World]:
    w = make_world(azurite, batch_standin)
    yield w
    w.deps.gateway.close()  # type: ignore[attr-defined]


def submit(w: World, name: str, data: bytes = b"an mp4 with no audio stream") -> tuple[str, str]:
    """Upload an input blob and submit it through the real submit use-case; returns (task id, ETag)."""
    blob = w.deps.storage.service.get_blob_client(w.settings.input_container, name)
    etag = naming.clean_etag(blob.upload_blob(data, overwrite=True)["etag"])
    result = submit_blob(blob, w.deps)
    assert result.status == "submitted" and result.task_id
    return result.task_id, etag


def fail(w: World, task_id: str, at: dt.datetime) -> None:
    """What Batch does when ffmpeg fails twice: stderr uploaded on taskfailure, the task completed as failed."""
    w.deps.storage.service.get_blob_client(
        w.settings.output_container, f"{naming.logs_folder(task_id)}/stderr.txt"
    ).upload_blob(STDERR.encode(), overwrite=True)
    w.standin.set_task(w.settings.job_id, task_id, exit_code=1, retry_count=1, at=at)


# -- request economy --------------------------------------------------------------------------------------


def run_scenario(azurite: Azurite, finished: int) -> dict[str, list[tuple[str, str, int]]]:
    """Ticks on a fresh account whose job has `finished` completed tasks behind it (1 or 300 of them failed, all
    older than the task retention), then live work; returns each tick's Batch requests."""
    old_failed = 1 if finished < 1000 else 300  # one page of the first (catch-up) listing of failures
    succeeded = finished - old_failed
    with BatchStandin() as standin:
        w = make_world(azurite, standin)
        job = w.settings.job_id
        ticks: dict[str, list[tuple[str, str, int]]] = {}
        _, ticks["first run (creates pool and job)"] = w.tick()

        long_ago = START - dt.timedelta(days=2)
        standin.bulk_load(job, succeeded, prefix="done", at=long_ago)
        standin.bulk_load(job, old_failed, prefix="oldfail", result="failure", at=long_ago)
        assert len(standin.tasks[job]) == finished
        w.clock.advance(60)
        _, ticks["history: past failures listed once, a batch deleted"] = w.tick()
        w.clock.advance(60)
        _, ticks["history: next batch deleted"] = w.tick()

        standin.bulk_load(job, 4, prefix="queued", state="active")
        standin.bulk_load(job, 1, prefix="running", state="running")
        w.clock.advance(60)
        grow, ticks["work arrives (resize)"] = w.tick()
        assert grow.resized and (grow.active, grow.running) == (4, 1)

        standin.finish_resize(w.settings.pool_id)
        w.clock.advance(60)
        steady, ticks["steady (no resize)"] = w.tick()
        assert not steady.resized and steady.target_nodes == grow.target_nodes
        deleted = sum(1 for t in ticks.values() for m, _, _ in t if m == "DELETE")
        assert len(standin.tasks[job]) == finished + 5 - deleted  # deleted tasks are gone from the job
        w.deps.gateway.close()  # type: ignore[attr-defined]
        assert standin.validation_errors == []
    return ticks


def _reads(requests: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    return [r for r in requests if r[0] != "DELETE"]


def test_a_tick_costs_the_same_with_10_5000_and_50000_finished_tasks(
    azurite: Azurite, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Counts per run, not speed: a loaded machine's stand-in may be slower than the budget assumes (its own test).
    monkeypatch.setattr(cleanup, "DELETE_BUDGET_SECONDS", 600.0)
    sizes = (10, 5_000, 50_000)
    runs = {n: run_scenario(azurite, n) for n in sizes}
    pool, job = "/pools/mp3pipe-pool", "/jobs/mp3pipe-job"
    small, large, largest = (runs[n] for n in sizes)
    assert small["first run (creates pool and job)"] == large["first run (creates pool and job)"] == [
        ("GET", pool, 404), ("POST", "/pools", 201), ("GET", pool, 200), ("GET", "/nodecounts", 200),
        ("GET", f"{job}/taskcounts", 404), ("POST", "/jobs", 201), ("GET", f"{job}/taskcounts", 200),
        ("GET", f"{job}/tasks", 200),
    ]
    listing_pages = -(-cleanup.MAX_DELETES_PER_RUN // 1000)  # pages of 1,000 up to the paced bound
    for label in small:
        # Reads are bounded whatever the job's history: the three reads, a listing of finished tasks (at most
        # OUTCOMES_PER_RUN: the next run goes on), and a clean-up listing of at most `listing_pages` pages;
        # deletes are bounded by what a run may send in its budget.
        for n in sizes:
            requests = runs[n][label]
            assert len(_reads(requests)) <= 8 + listing_pages, (label, n)
            assert sum(1 for m, _, _ in requests if m == "DELETE") <= cleanup.MAX_DELETES_PER_RUN, (label, n)
        assert set(_reads(small[label])) <= set(_reads(large[label])), label
    history = "history: past failures listed once, a batch deleted"
    assert _reads(large[history]) == _reads(largest[history]) == [
        ("GET", pool, 200), ("GET", "/nodecounts", 200), ("GET", f"{job}/taskcounts", 200),
    ] + [("GET", f"{job}/tasks", 200)] * (outcomes.OUTCOMES_PER_RUN // 1000) + [  # finished since the watermark,
    ] + [("GET", f"{job}/tasks", 200)] * listing_pages  # up to what a run records; the clean-up listing, paged
    assert [m for m, _, _ in small[history]].count("DELETE") == 10  # everything finished, in one batch
    # A long history drains in runs of the paced bound, far more than DELETE_BATCH.
    assert [m for m, _, _ in large[history]].count("DELETE") == cleanup.MAX_DELETES_PER_RUN
    assert [m for m, _, _ in largest[history]].count("DELETE") == cleanup.MAX_DELETES_PER_RUN
    assert [m for m, _, _ in large["history: next batch deleted"]].count("DELETE") == \
        5_000 - cleanup.MAX_DELETES_PER_RUN  # the rest of a 5,000-task history: the job is empty again
    assert large["steady (no resize)"] == small["steady (no resize)"]
    assert small["steady (no resize)"] == [  # nothing finished any more: three reads, no listing
        ("GET", pool, 200), ("GET", "/nodecounts", 200), ("GET", f"{job}/taskcounts", 200),
    ]
    assert [r for r in large["work arrives (resize)"] if r[0] == "POST"] == [("POST", f"{pool}/resize", 202)]
    for n in sizes:
        REQUEST_COUNTS[n] = {label: len(requests) for label, requests in runs[n].items()}
    with capsys.disabled():
        print("\nBatch requests per monitor tick (finished tasks behind the job):")
        for label in small:
            print(f"  {label:<52}" + "".join(f" {n:>6,}: {REQUEST_COUNTS[n][label]:>3}" for n in sizes))


# -- outcomes --------------------------------------------------------------------------------------


def test_a_succeeded_task_is_recorded_converted_with_its_mp3_and_listed_once(world: World) -> None:
    name, job = "talks/keynote.mp4", world.settings.job_id
    task_id, etag = submit(world, name)
    mp3 = world.deps.storage.service.get_blob_client(world.settings.output_container, "talks/keynote.mp3")
    mp3.upload_blob(b"ID3", overwrite=True)  # what Batch uploads before it completes the task as a success
    world.standin.set_task(job, task_id, exit_code=0, at=START - dt.timedelta(seconds=10))

    result, _ = world.tick()
    assert result.reported == () and world.reports() == []
    record, written = FileRecords.of(world.deps).get(name)
    assert record is not None and (record.etag, record.state, record.output) == (etag, "converted",
                                                                                 "talks/keynote.mp3")
    assert FileRecords.of(world.deps).list_all()[name].state == "converted"  # the headline a records listing reads
    assert [(f.name, f.state, f.output) for f in status.collect(world.deps).files] == [
        (name, "done", "talks/keynote.mp3")]

    world.clock.advance(60)
    world.tick()  # nothing finished since: no listing of finished tasks, the record is left as it is
    watched = [r for r in world.standin.sent("GET", f"/jobs/{job}/tasks")
               if "stateTransitionTime lt" not in r.query.get("$filter", "")]
    assert watched == []
    assert FileRecords.of(world.deps).get(name) == (record, written)  # not even rewritten


def test_a_failed_task_is_reported_once_across_two_ticks(world: World) -> None:
    name = "videos/2024/clip one.mp4"
    task_id, etag = submit(world, name)
    env = {e["name"]: e["value"] for e in world.standin.tasks[world.settings.job_id][task_id]["environmentSettings"]}
    assert env == {"MP3PIPE_INPUT_BLOB": name, "MP3PIPE_INPUT_ETAG": etag, "MP3PIPE_PRESET": "standard"}
    finished = START - dt.timedelta(seconds=30)
    fail(world, task_id, finished)

    first, requests = world.tick()
    report = naming.report_name(name)
    assert first.reported == (report,) == ("videos/2024/clip one.error.json",)
    assert [m for m, _, _ in requests].count("POST") == 0  # nothing to resize: no work
    blob = world.deps.storage.service.get_blob_client(world.settings.output_container, report)
    written = blob.get_blob_properties().etag

    world.clock.advance(60)
    second, _ = world.tick()
    assert second.reported == ()
    assert world.reports() == [report]
    assert blob.get_blob_properties().etag == written  # not even rewritten

    body = json.loads(blob.download_blob().readall())
    assert set(body) >= REPORT_KEYS
    assert (body["input"], body["etag"], body["task_id"], body["exit_code"], body["attempts"]) == \
        (name, etag, task_id, 1, 2)
    assert body["reason"] == "the input has no audio stream"
    assert "matches no streams" in body["stderr_tail"]
    assert dt.datetime.fromisoformat(body["finished_at"]) == finished
    assert body["logs"] == naming.logs_folder(task_id)


def test_a_burst_of_failures_on_slow_storage_is_reported_across_runs_each_within_its_deadline(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """40 files fail at once while each storage request takes 10 s: a run reports what fits before its deadline
    (half host.json's functionTimeout), keeps its watermark, and the next runs report the rest, each once."""
    # The slow storage moves one shared clock per request, so requests sent side by side would add up as if sent
    # one after another: the watcher records one outcome at a time here, so the clock tells the run's true length.
    monkeypatch.setattr(outcomes, "RECORD_THREADS", 1)
    names = [f"burst/{i:02d}.mp4" for i in range(40)]
    for i, name in enumerate(names):
        task_id, _ = submit(world, name)
        fail(world, task_id, START - dt.timedelta(seconds=60 - i))
    slow = SlowStorage(world.clock.advance, list_s=10.0, other_s=10.0)
    world.deps = dataclasses.replace(world.deps, storage=slow_storage(world.settings, slow))
    runs: list[TickResult] = []
    while len(world.reports()) < len(names):
        started = world.clock.now
        runs.append(world.tick()[0])
        assert world.clock.now - started < function_timeout_seconds(), "a run outlived the function timeout"
        assert len(runs) < 20, "no progress across runs"
        world.clock.advance(60)
    assert len(runs) >= 3 and all(0 < len(r.reported) < len(names) for r in runs)
    reported = [path for r in runs for path in r.reported]
    assert sorted(reported) == world.reports() == sorted(naming.report_name(n) for n in names)  # each once
    assert world.tick()[0].reported == ()


def test_a_failure_at_the_watermark_after_a_tick_is_reported_once_too(world: World) -> None:
    a, _ = submit(world, "a.mp4")
    b, _ = submit(world, "b.mp4")
    same_instant = START - dt.timedelta(seconds=10)
    fail(world, a, same_instant)
    assert world.tick()[0].reported == ("a.error.json",)
    fail(world, b, same_instant)  # completes later, but Batch stamped it with the watermark's time
    world.clock.advance(60)
    assert world.tick()[0].reported == ("b.error.json",)
    world.clock.advance(60)
    assert world.tick()[0].reported == ()
    assert world.reports() == ["a.error.json", "b.error.json"]


# -- resize requests --------------------------------------------------------------------------------------


def test_resizes_happen_only_when_steady_and_let_tasks_complete(azurite: Azurite,
                                                                batch_standin: BatchStandin) -> None:
    w = make_world(azurite, batch_standin, BATCH_SPOT_SHARE="0.5", SCALE_IDLE_GRACE_SECONDS="300")
    pool, job = w.settings.pool_id, w.settings.job_id
    w.tick()  # creates pool and job
    ids = batch_standin.bulk_load(job, 4, prefix="queued", state="active")
    w.clock.advance(60)
    grow, _ = w.tick()
    assert grow.resized and grow.target_nodes == 2

    batch_standin.bulk_load(job, 40, prefix="burst", state="active")  # more demand while the pool resizes
    w.clock.advance(60)
    waiting, requests = w.tick()
    assert not waiting.resized and ("POST", f"/pools/{pool}/resize", 202) not in requests

    batch_standin.finish_resize(pool)
    for task_id in ids + [f"burst-{i:05d}" for i in range(40)]:
        batch_standin.set_task(job, task_id, exit_code=0)
    w.clock.advance(60)
    assert not w.tick()[0].resized  # idle, within the grace period
    w.clock.advance(301)
    shrink, _ = w.tick()
    assert shrink.resized and shrink.target_nodes == 0
    assert w.resizes == [
        {"targetDedicatedNodes": 1, "targetLowPriorityNodes": 1, "nodeDeallocationOption": "taskcompletion"},
        {"targetDedicatedNodes": 0, "targetLowPriorityNodes": 0, "nodeDeallocationOption": "taskcompletion"},
    ]
    w.deps.gateway.close()  # type: ignore[attr-defined]


def test_preempted_spot_nodes_are_made_up_for_with_dedicated_ones(azurite: Azurite,
                                                                   batch_standin: BatchStandin) -> None:
    w = make_world(azurite, batch_standin, BATCH_SPOT_SHARE="0.5", SCALE_IDLE_GRACE_SECONDS="300")
    pool, job = w.settings.pool_id, w.settings.job_id
    w.tick()
    batch_standin.bulk_load(job, 4, prefix="queued", state="active")
    w.clock.advance(60)
    assert w.tick()[0].resized
    batch_standin.finish_resize(pool)  # 1 dedicated + 1 Spot node
    w.clock.advance(60)
    steady, requests = w.tick()
    assert not steady.resized
    assert [p for _, p, _ in requests].count("/nodecounts") == 1  # asked only because the pool has Spot nodes

    batch_standin.preempted[pool] = 1  # Azure takes the Spot node back; it stays in the pool, doing nothing
    w.clock.advance(60)
    result, _ = w.tick()
    assert result.resized and "preempted" in result.reason
    assert w.resizes[-1] == {"targetDedicatedNodes": 2, "targetLowPriorityNodes": 1,
                             "nodeDeallocationOption": "taskcompletion"}
    assert batch_standin.validation_errors == []
    w.deps.gateway.close()  # type: ignore[attr-defined]


# -- Batch-side faults --------------------------------------------------------------------------------------


def test_a_preempted_task_is_requeued_not_reported(world: World) -> None:
    world.tick()
    task_id, etag = submit(world, "preempted.mp4")
    world.standin.set_task(world.settings.job_id, task_id, state="running", at=START + dt.timedelta(seconds=5))
    # The Spot node running it is preempted: Batch puts the task back in the queue.
    world.standin.set_task(world.settings.job_id, task_id, state="active", at=START + dt.timedelta(seconds=9))
    world.clock.advance(60)
    result, _ = world.tick()
    # What the user sees: no failure report, the file still waiting to convert, and a node asked for it.
    assert world.reports() == [] and result.reported == ()
    record, _ = FileRecords.of(world.deps).get("preempted.mp4")
    assert record is not None and (record.etag, record.state) == (etag, "submitted")
    assert [(f.name, f.state) for f in status.collect(world.deps).files] == [("preempted.mp4", "queued")]
    assert result.target_nodes == 1 and world.resizes[-1]["targetDedicatedNodes"] == 1
    world.standin.set_task(world.settings.job_id, task_id, state="completed", exit_code=0,
                           at=START + dt.timedelta(seconds=70))
    world.clock.advance(60)
    assert world.tick()[0].reported == ()
    assert world.reports() == []
    assert FileRecords.of(world.deps).get("preempted.mp4")[0].state == "converted"  # the outcome, recorded


def test_throttling_and_server_errors_during_a_tick_are_retried(world: World) -> None:
    world.tick()
    job = world.settings.job_id
    task_id, _ = submit(world, "throttled.mp4")
    world.standin.fail_next(429, path=f"/jobs/{job}/taskcounts", times=1)
    world.standin.fail_next(503, path=f"/pools/{world.settings.pool_id}", method="GET", times=1)
    fail(world, task_id, START + dt.timedelta(seconds=30))
    world.clock.advance(60)
    result, _ = world.tick()
    assert all(f.times == 0 for f in world.standin.faults)  # both injected errors were served, then retried
    # The outcome: the tick went through as if nothing had happened.
    assert (result.active, result.running, result.reported) == (0, 0, ("throttled.error.json",))
    assert world.reports() == ["throttled.error.json"]
    report = world.deps.storage.get_json(world.settings.output_container, "throttled.error.json")
    assert (report["task_id"], report["reason"]) == (task_id, "the input has no audio stream")
    state = world.deps.storage.get_json(world.settings.state_container, MONITOR_STATE_BLOB)
    assert state["failed_since"] == (START + dt.timedelta(seconds=30)).isoformat()  # the watermark moved on
    world.clock.advance(60)
    assert world.tick()[0].reported == ()  # and the failure is not reported a second time
