"""Submit on the fakes: one task per blob version, a newer version replaces an older one, names refused with a
report, a failed add left for reconcile, `retry`."""

from __future__ import annotations

import pytest

from shared.domain import naming
from shared.domain.file_life import FileRecord, RecordState
from shared.ports.batch import GatewayError, JobNotFound, TaskSpec
from shared.usecases.file_records import FileRecords
from shared.usecases.monitor.tick import monitor_tick
from shared.usecases.reconcile import reconcile
from shared.usecases.submit import retry
from tests.fast.conftest import World


def record(w: World, name: str) -> FileRecord:
    found = FileRecords(w.storage, w.settings.state_container).get(name)[0]
    assert found is not None, f"no record of {name}"
    return found


def test_the_same_blob_version_triggered_twice_makes_one_task(world: World) -> None:
    world.drop("twice.mp4")
    first, second = world.submit("twice.mp4"), world.submit("twice.mp4")
    assert (first.status, second.status) == ("submitted", "duplicate")
    assert first.task_id == second.task_id and list(world.batch.tasks) == [first.task_id]
    assert world.batch.task_counts().active == 1
    env = world.batch.tasks[first.task_id].spec.env()
    assert naming.clean_etag(env["MP3PIPE_INPUT_ETAG"]) == naming.clean_etag(world.storage.etag_of(
        world.settings.input_container, "twice.mp4") or "")


def test_a_new_version_is_a_new_task_and_the_older_one_is_stopped_and_its_report_dropped(world: World) -> None:
    world.drop("v.mp4")
    old = world.submit("v.mp4")
    world.fail(old.task_id or "")
    monitor_tick(world.deps)
    assert naming.report_name("v.mp4") in world.outputs()  # the old version failed and was reported
    world.clock.advance(5)
    world.drop("v.mp4", b"new content")
    new = world.submit("v.mp4")
    assert new.status == "submitted" and new.task_id != old.task_id
    assert naming.report_name("v.mp4") not in world.outputs()  # it no longer applies
    rec = record(world, "v.mp4")
    assert (rec.task_id, rec.state) == (new.task_id, RecordState.SUBMITTED)


def test_a_newer_version_stops_the_older_versions_queued_task(world: World) -> None:
    world.drop("q.mp4")
    old = world.submit("q.mp4")
    world.clock.advance(5)
    world.drop("q.mp4", b"newer")
    new = world.submit("q.mp4")
    (ended,) = world.batch.finished_tasks_since(None)
    assert ended.id == old.task_id and "TaskEnded" in ended.failure_message  # its MP3 cannot land over the new one
    assert world.batch.task_status(new.task_id or "") == "active"


def test_non_mp4_is_skipped_without_a_task(world: World) -> None:
    world.drop("readme.txt")
    assert world.submit("readme.txt").status == "skipped"
    with pytest.raises(JobNotFound):  # no job was even needed
        world.batch.task_counts()


def test_a_name_that_cannot_be_mapped_is_rejected_with_a_report_and_no_task(world: World) -> None:
    world.drop("_mp3pipe-logs/x.mp4")
    result = world.submit("_mp3pipe-logs/x.mp4")
    assert result.status == "rejected" and "reserved" in result.detail
    report = world.storage.get_json(world.settings.output_container, naming.report_name("_mp3pipe-logs/x.mp4"))
    assert report is not None and "reserved" in report["reason"] and report["input"] == "_mp3pipe-logs/x.mp4"
    assert record(world, "_mp3pipe-logs/x.mp4").state == RecordState.REJECTED
    assert world.batch.tasks == {}


class Outage(GatewayError):
    """Batch answering 503 to every retry."""


def test_a_submit_batch_refuses_is_recorded_unsubmitted_and_reconcile_submits_it(world: World) -> None:
    world.drop("later.mp4")
    real_add = world.batch.add_task

    def refused(task: TaskSpec) -> bool:
        raise Outage("ServerBusy")

    world.batch.add_task = refused  # type: ignore[method-assign]
    with pytest.raises(Outage):
        world.submit("later.mp4")
    assert record(world, "later.mp4").state == RecordState.UNSUBMITTED
    assert world.batch.tasks == {}
    world.batch.add_task = real_add  # type: ignore[method-assign]
    assert reconcile(world.deps, budget=10).submitted == 1
    rec = record(world, "later.mp4")
    assert rec.state == RecordState.SUBMITTED and world.batch.task_status(rec.task_id) == "active"


def test_retry_converts_a_file_again_as_a_new_version(world: World) -> None:
    world.drop("again.mp4")
    first = world.submit("again.mp4")
    world.fail(first.task_id or "")
    world.clock.advance(60)
    again = retry(world.deps, "again.mp4")
    assert again.status == "submitted" and again.task_id != first.task_id
    assert world.batch.task_status(again.task_id or "") == "active"
    props = world.storage.properties(world.storage.blob(world.settings.input_container, "again.mp4"))
    assert props is not None and "mp3pipe_retry" in props.metadata
    assert retry(world.deps, "never-dropped.mp4").status == "gone"
