"""The many-files model (tests/support/sim/throughput.py) against arithmetic a reader can redo: the job grows by what a
monitor run cannot delete, a paced delete holds it at the retention window, and reconcile never wraps a container
that grows faster than it looks."""

from __future__ import annotations

from tests.support.sim.throughput import CODE, Load, Policy, Pool, paced_delete_bound, simulate

LOAD = Load(horizon_s=2 * 3600)
RATE = LOAD.files_per_day / 86400
POOL = Pool(nodes=9, slots=2, slot_s=1.162)
RETENTION = CODE.retention_local_s


def test_the_job_grows_by_the_completions_a_run_cannot_delete():
    out = simulate(LOAD, POOL, Policy("today", RETENTION, CODE.delete_batch, CODE.reconcile_budget), probes=10)
    ticks = LOAD.horizon_s // CODE.monitor_s
    # runs after the first tick's tasks passed their retention (a tick's completions count from the tick's end)
    deleting = ticks - RETENTION // CODE.monitor_s - 1
    expected_kept = RATE * LOAD.horizon_s - CODE.delete_batch * deleting
    assert abs(out.series.completed_kept[-1] - expected_kept) < 0.01 * expected_kept
    assert out.deleted == CODE.delete_batch * deleting


def test_paced_deletes_hold_the_job_at_the_retention_window():
    bound = paced_delete_bound(LOAD.files_per_day, CODE.monitor_s)
    assert bound > RATE * CODE.monitor_s  # deletes more than a run's completions, so a backlog drains
    out = simulate(LOAD, POOL, Policy("fix", RETENTION, bound, CODE.reconcile_budget), probes=10)
    window = RATE * (RETENTION + 2 * CODE.monitor_s)
    assert max(out.series.completed_kept[-60:]) <= window


def test_reconcile_never_wraps_a_container_growing_faster_than_its_budget():
    day = Load(horizon_s=86400)
    out = simulate(day, POOL, Policy("today", RETENTION, CODE.delete_batch, CODE.reconcile_budget), probes=500)
    assert out.reconcile_wraps == 0
    assert out.reconcile_checked == CODE.reconcile_budget * (86400 // CODE.reconcile_s)
    assert out.probes_seen_within(86400) < 0.2  # most files are never looked at within the day
