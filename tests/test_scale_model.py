"""The many-files model (tests/support/sim/throughput.py) against arithmetic a reader can redo: the job grows by what a
monitor run cannot delete, a paced delete holds it at the retention window, and reconcile never wraps a container
that grows faster than it looks."""

from __future__ import annotations

from shared.usecases.monitor.cleanup import delete_bound
from tests.support.sim.throughput import BEFORE_DELETE_BOUND, CODE, Load, Policy, Pool, simulate

LOAD = Load(horizon_s=2 * 3600)
RATE = LOAD.files_per_day / 86400
POOL = Pool(nodes=9, slots=2, slot_s=1.162)
RETENTION = CODE.retention_local_s


def test_the_job_grows_by_the_completions_a_run_cannot_delete():
    out = simulate(LOAD, POOL, Policy("before", RETENTION, BEFORE_DELETE_BOUND, CODE.reconcile_budget), probes=10)
    ticks = LOAD.horizon_s // CODE.monitor_s
    # runs after the first tick's tasks passed their retention (a tick's completions count from the tick's end)
    deleting = ticks - RETENTION // CODE.monitor_s - 1
    expected_kept = RATE * LOAD.horizon_s - BEFORE_DELETE_BOUND * deleting
    assert abs(out.series.completed_kept[-1] - expected_kept) < 0.01 * expected_kept
    assert out.deleted == BEFORE_DELETE_BOUND * deleting


def test_paced_deletes_hold_the_job_at_the_retention_window():
    per_tick = round(RATE * CODE.monitor_s)
    window = round(RATE * RETENTION)
    assert delete_bound(window + per_tick, window) > per_tick  # more than a run's completions: a backlog drains
    out = simulate(LOAD, POOL, Policy("now", RETENTION, 0, CODE.reconcile_budget, paced=True), probes=10)
    window = RATE * (RETENTION + 2 * CODE.monitor_s)
    assert max(out.series.completed_kept[-60:]) <= window


def test_reconcile_never_wraps_a_container_growing_faster_than_its_budget():
    day = Load(horizon_s=86400)
    out = simulate(day, POOL, Policy("before", RETENTION, BEFORE_DELETE_BOUND, CODE.reconcile_budget), probes=500)
    assert out.reconcile_wraps == 0
    assert out.reconcile_checked == CODE.reconcile_budget * (86400 // CODE.reconcile_s)
    assert out.probes_seen_within(86400) < 0.2  # most files are never looked at within the day


def test_reconcile_sized_by_the_code_passes_a_seven_day_container_in_about_two_hours():
    day = Load(horizon_s=86400)
    kept = 7_000_000
    out = simulate(day, POOL, Policy("now", RETENTION, 0, CODE.reconcile_budget, paced=True, sized=True),
                   probes=500, initial_blobs=kept)
    # a first pass doubling from RECONCILE_BATCH, then one pass per CODE.reconcile_pass_s of a growing container
    assert out.reconcile_wraps >= 0.8 * 86400 / CODE.reconcile_pass_s - 2
    assert out.reconcile_checked >= out.reconcile_wraps * kept
    assert out.probes_seen_within(86400) > 0.9
