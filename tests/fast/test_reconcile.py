"""Reconcile and backfill on the fakes: missed inputs submitted a bounded slice at a time, lost tasks submitted
again, converted or failed files left alone, and the pass's tallies kept for `status`."""

from __future__ import annotations

from shared.usecases.monitor.tick import monitor_tick
from shared.usecases.reconcile import backfill, last_pass, reconcile
from tests.fast.conftest import World


def test_reconcile_submits_missed_blobs_a_bounded_slice_at_a_time(world: World) -> None:
    for i in range(5):
        world.drop(f"old/{i}.mp4")  # there before the app: no trigger ever fired for them
    world.drop("old/readme.txt")
    first = reconcile(world.deps, budget=2)
    assert (first.checked, first.submitted, first.wrapped) == (2, 2, False)
    assert len(world.batch.tasks) == 2
    runs = [reconcile(world.deps, budget=2) for _ in range(2)]
    assert any(r.wrapped for r in runs)  # until a pass has finished, a run looks at twice the previous one
    assert len(world.batch.tasks) == 5
    again = reconcile(world.deps, budget=10)  # a full pass later: everything has a record, nothing is resubmitted
    assert again.submitted == 0 and len(world.batch.tasks) == 5


def test_backfill_covers_the_container_once_and_is_idempotent(world: World) -> None:
    for i in range(7):
        world.drop(f"bf/{i}.mp4")
    assert backfill(world.deps, budget=3).submitted == 7
    assert backfill(world.deps, budget=3).submitted == 0
    world.clock.advance(5)
    world.drop("bf/3.mp4", b"new content")  # overwritten while no trigger was listening
    assert backfill(world.deps, budget=3).submitted == 1
    assert len(world.batch.tasks) == 8


def test_a_task_batch_lost_is_submitted_again_but_a_converted_files_deleted_task_is_not(world: World) -> None:
    lost, converted = world.dropped("lost.mp4", "done.mp4")
    world.convert("done.mp4", converted)
    world.batch.delete_task(converted)  # the monitor's clean-up, after the retention
    world.batch.delete_task(lost)  # e.g. the job was deleted and made again
    result = backfill(world.deps, budget=10)
    assert result.submitted == 1 and list(world.batch.tasks) == [lost]  # same version, same task id
    assert world.batch.task_status(lost) == "active"


def test_a_finished_pass_counts_converted_failed_and_unconverted_inputs(world: World) -> None:
    a, b, _ = world.dropped("a.mp4", "b.mp4", "c.mp4")
    world.convert("a.mp4", a)
    world.fail(b)
    monitor_tick(world.deps)  # b's failure reported and recorded
    world.drop("waiting.mp4")  # never triggered: the pass submits it
    world.drop("notes.txt")
    assert backfill(world.deps, budget=10).submitted == 1
    tally = last_pass(world.deps)
    assert tally is not None
    assert {k: tally[k] for k in ("inputs", "converted", "failed", "unconverted")} == \
        {"inputs": 4, "converted": 1, "failed": 1, "unconverted": 2}
