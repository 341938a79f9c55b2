"""Monitor ticks on the fakes: the pool sized to the work and back to the minimum, failure reports written once
where the docs say, tasks cleaned up once their outcome is recorded, broken nodes removed."""

from __future__ import annotations

from shared.domain import naming
from shared.domain.file_life import RecordState
from shared.domain.monitor_state import MonitorState
from shared.usecases import status
from shared.usecases.file_records import FileRecords
from shared.usecases.monitor import cleanup
from shared.usecases.monitor.tick import monitor_tick
from tests.fast.conftest import World


def test_the_pool_grows_to_the_queued_work_within_the_maximum_and_shrinks_after_the_idle_grace(world: World) -> None:
    world.dropped(*(f"in/{i}.mp4" for i in range(3)))
    grow = monitor_tick(world.deps)
    pool = world.batch.pool_state()
    assert pool is not None and grow.resized and grow.active == 3
    assert 1 <= pool.target_dedicated + pool.target_spot <= 3  # work gets nodes, never more than one a file
    world.batch.finish_resize()
    world.clock.advance(60)
    assert monitor_tick(world.deps).resized is False  # steady at the right size: nothing sent

    world.dropped(*(f"more/{i}.mp4" for i in range(20)))
    world.clock.advance(60)
    monitor_tick(world.deps)
    pool = world.batch.pool_state()
    assert pool is not None and pool.target_dedicated + pool.target_spot == world.settings.max_nodes

    world.batch.finish_resize()
    for task_id in list(world.batch.tasks):
        world.batch.complete(task_id, ok=True)
    world.clock.advance(60)
    monitor_tick(world.deps)  # work just finished: the idle grace keeps the nodes
    pool = world.batch.pool_state()
    assert pool is not None and pool.target_dedicated + pool.target_spot > 0
    world.batch.finish_resize()
    world.clock.advance(world.settings.idle_grace_seconds + 60)
    monitor_tick(world.deps)
    pool = world.batch.pool_state()
    assert pool is not None and pool.target_dedicated + pool.target_spot == world.settings.min_nodes


def test_a_failed_task_is_reported_once_beside_its_output_and_its_record_says_failed(world: World) -> None:
    (task_id,) = world.dropped("clips/no audio.mp4")
    world.clock.advance(30)
    world.fail(task_id)
    first = monitor_tick(world.deps)
    path = naming.report_name("clips/no audio.mp4")
    assert first.reported == (path,) and path == "clips/no audio.error.json"
    report = world.storage.get_json(world.settings.output_container, path)
    assert report is not None and report["task_id"] == task_id and report["exit_code"] == 1
    assert report["reason"] == "the input has no audio stream" and "matches no streams" in report["stderr_tail"]
    rec, _ = FileRecords(world.storage, world.settings.state_container).get("clips/no audio.mp4")
    assert rec is not None and (rec.state, rec.report) == (RecordState.FAILED, path)
    world.clock.advance(60)
    assert monitor_tick(world.deps).reported == ()  # once, not every tick
    (file,) = status.collect(world.deps).files
    assert (file.state, file.output) == ("failed", path) and file.reason == report["reason"]


def test_a_failure_of_a_version_since_replaced_writes_no_report(world: World) -> None:
    (old,) = world.dropped("re.mp4")
    world.clock.advance(5)
    world.drop("re.mp4", b"fixed file")  # replaced before the old task failed; its trigger has not run yet
    world.fail(old)
    assert monitor_tick(world.deps).reported == ()
    assert naming.report_name("re.mp4") not in world.outputs()


def test_finished_tasks_leave_the_job_after_the_retention_once_their_outcome_is_recorded(world: World) -> None:
    ok, bad = world.dropped("a.mp4", "b.mp4")
    world.convert("a.mp4", ok)
    world.clock.advance(1)
    world.fail(bad)
    world.clock.advance(60)
    monitor_tick(world.deps)  # reports the failure; both are younger than the retention
    assert set(world.batch.tasks) == {ok, bad}
    world.clock.advance(world.settings.task_retention_seconds)
    monitor_tick(world.deps)
    assert world.batch.tasks == {}
    assert set(world.outputs()) >= {"a.mp3", naming.report_name("b.mp4")}  # what the user keeps


def test_a_failed_task_is_not_deleted_before_it_is_reported(world: World) -> None:
    (bad,) = world.dropped("c.mp4")
    world.fail(bad)
    world.clock.advance(world.settings.task_retention_seconds + 60)
    counts = world.batch.task_counts()
    assert cleanup.delete_finished(world.deps, MonitorState(), counts.completed, world.clock()) == 0
    assert bad in world.batch.tasks


def test_a_node_whose_start_task_failed_is_removed_and_shown_in_status_until_it_is_gone(world: World) -> None:
    world.dropped("n.mp4")
    monitor_tick(world.deps)
    world.batch.finish_resize()
    world.batch.break_node("tvm-1", exit_code=100, stderr="E: Unable to locate package ffmpeg\n")
    world.clock.advance(60)
    result = monitor_tick(world.deps)
    assert "broken" in result.reason and world.batch.broken_nodes() == []
    (problem,) = status.collect(world.deps).pool_problems  # what the monitor saw on its last run
    assert "tvm-1" in problem and "exit code 100" in problem and "Unable to locate package ffmpeg" in problem
    world.batch.finish_resize()
    world.clock.advance(60)
    monitor_tick(world.deps)
    assert status.collect(world.deps).pool_problems == []
