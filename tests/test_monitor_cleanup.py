"""The monitor's clean-up at load, through the Azure adapter and the Batch REST stand-in: deletes paced to the
completions, the listing paged, throttling and the time budget stop a run without losing a task."""

from __future__ import annotations

import datetime as dt

import pytest

from devhost.azurite import Azurite
from shared.domain.monitor_state import MONITOR_STATE_BLOB, MonitorState
from shared.usecases.monitor import cleanup
from tests.support.batch_standin import BatchStandin
from tests.test_monitor_requests import START, World, make_world

pytest_plugins = ["tests.support.batch_fixtures"]

LONG_AGO = START - dt.timedelta(hours=1)  # older than the task retention (900 s)


def deletes(requests: list[tuple[str, str, int]]) -> int:
    return sum(1 for m, _, _ in requests if m == "DELETE")


@pytest.fixture
def w(azurite: Azurite, batch_standin: BatchStandin, monkeypatch: pytest.MonkeyPatch) -> World:
    # Counts per run, not speed: a loaded machine's stand-in may be slower than the budget assumes (tested below).
    monkeypatch.setattr(cleanup, "DELETE_BUDGET_SECONDS", 600.0)
    world = make_world(azurite, batch_standin)
    world.tick()  # creates pool and job
    yield world
    world.deps.gateway.close()  # type: ignore[attr-defined]


def test_a_run_keeps_up_with_thousands_finishing_a_minute(w: World) -> None:
    job = w.settings.job_id
    per_minute = 2_000  # more than ten times DELETE_BATCH finish between two runs
    sizes = []
    for minute in range(4):
        w.standin.bulk_load(job, per_minute, prefix=f"m{minute}", at=LONG_AGO)
        w.clock.advance(60)
        _, requests = w.tick()
        assert deletes(requests) == per_minute  # every finished task of the minute, not 100
        listings = [r for r in requests if r[:2] == ("GET", f"/jobs/{job}/tasks")]
        # The outcome watcher's listing and the clean-up's, each paged past its first page and no further.
        assert len(listings) == 2 * (per_minute // 1000)
        assert len(requests) <= 3 + len(listings) + cleanup.MAX_DELETES_PER_RUN
        sizes.append(len(w.standin.tasks[job]))
    assert sizes == [0, 0, 0, 0]  # the job does not grow


def test_a_backlog_drains_in_runs_bounded_by_the_time_budget(w: World) -> None:
    job = w.settings.job_id
    w.standin.bulk_load(job, 7_000, prefix="old", at=LONG_AGO)
    counts = []
    for _ in range(3):
        w.clock.advance(60)
        _, requests = w.tick()
        counts.append(deletes(requests))
    assert counts == [cleanup.MAX_DELETES_PER_RUN, cleanup.MAX_DELETES_PER_RUN, 7_000 - 2 * cleanup.MAX_DELETES_PER_RUN]
    assert w.standin.tasks[job] == {}


def test_server_busy_stops_the_run_and_the_next_one_goes_on(w: World) -> None:
    job = w.settings.job_id
    w.standin.bulk_load(job, 500, prefix="busy", at=LONG_AGO)
    w.standin.fail_next(503, path=f"/jobs/{job}/tasks/", method="DELETE", times=10_000)
    w.clock.advance(60)
    result, requests = w.tick()
    # Batch sheds load: the run stops issuing deletes (each was retried 4 times) instead of sending all 500.
    assert deletes(requests) <= cleanup.DELETE_THREADS * 5
    assert len(w.standin.tasks[job]) == 500 and result.reason  # nothing lost, the tick itself went through
    state = MonitorState.from_json(w.deps.storage.get_json(w.settings.state_container, MONITOR_STATE_BLOB))
    assert state.completed == 500  # the tasks still count as completed for the next run
    w.standin.faults.clear()
    w.clock.advance(60)
    _, requests = w.tick()
    assert deletes(requests) == 500 and w.standin.tasks[job] == {}


def test_a_spent_budget_sends_no_more_deletes_and_loses_nothing(w: World) -> None:
    job = w.settings.job_id
    w.standin.bulk_load(job, 300, prefix="late", at=LONG_AGO)
    state = MonitorState.from_json(None)
    w.standin.clear_requests()
    assert cleanup.delete_finished(w.deps, state, 300, w.clock(), budget_s=0.0) == 0
    assert [r.method for r in w.standin.requests] == ["GET"]  # the listing only
    assert len(w.standin.tasks[job]) == 300
    assert cleanup.delete_finished(w.deps, state, 300, w.clock()) == 300


def test_the_bound_follows_the_completions() -> None:
    assert cleanup.delete_bound(10, 0) == cleanup.DELETE_BATCH
    assert cleanup.delete_bound(1_500, 800) == 2 * 700 + 800
    assert cleanup.delete_bound(10_000_000, None) == cleanup.MAX_DELETES_PER_RUN == 3_200
