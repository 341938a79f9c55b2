"""One contract for the Batch port, run against both adapters (local, and Azure via the REST stand-in) and the
in-memory fake the fast use-case tests run on (tests/support/fakes/batch.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localbatch.gateway import LocalBatchGateway
from shared.domain import ffmpeg, planning
from shared.ports.batch import BatchGateway, JobNotFound, PoolBusy, PoolSpec, TaskSpec
from tests.support.batch_standin import BatchStandin
from tests.support.fakes.batch import MemoryBatch
from tests.support.local_tasks import task_ids

pytest_plugins = ["tests.support.batch_fixtures"]

POOL = "contract-pool"
JOB = "contract-job"
ENV = ((planning.ENV_INPUT_BLOB, "videos/a b.mp4"), (planning.ENV_INPUT_ETAG, "0x8D1"))
# The pipeline's own command: with no resource file, input.mp4 is missing and ffmpeg really fails.
FAILING = ffmpeg.command_line("standard")
SUCCEEDING = "ffmpeg -nostdin -hide_banner -f lavfi -i sine=duration=0.1 -f null -"
MISSING_INPUT_EXIT = 254  # what ffmpeg returns when its input file does not exist (AVERROR(ENOENT) & 0xff)


def task(task_id: str, command: str = FAILING, retries: int = 1) -> TaskSpec:
    return TaskSpec(id=task_id, display_name=f"videos/{task_id}.mp4", command_line=command, resource_files=(),
                    output_files=(), environment=ENV, max_task_retry_count=retries, max_wall_clock_seconds=60)


class Kit:
    """One adapter under test plus the way to make its tasks finish (a real run, or the stand-in's control API)."""

    name = ""
    gw: BatchGateway

    def complete(self, spec: TaskSpec, *, ok: bool) -> None:
        raise NotImplementedError

    def finish_resize(self) -> None:
        """The pool reaches the size it was asked for (local pools are that size at once)."""

    def break_node(self, node_id: str, exit_code: int, stderr: str) -> None:
        """One of the pool's nodes fails its start task."""
        pytest.skip(f"{self.name} nodes never break")

    def fail_resize(self, code: str, message: str, reached: int) -> None:
        """The resize in progress ends short of its target with Batch's error."""
        pytest.skip(f"{self.name} resizes never fail")

    def start(self, spec: TaskSpec) -> None:
        """A node picks the task up and runs it (until `complete`)."""
        pytest.skip(f"{self.name} tasks run on their own, too briefly to hold one running")

    def close(self) -> None:
        """Release what the adapter holds."""


class FakeKit(Kit):
    name = "fake"

    def __init__(self) -> None:
        self.fake = MemoryBatch()
        self.gw = self.fake

    def complete(self, spec: TaskSpec, *, ok: bool) -> None:
        # The exit code ffmpeg really returns in the local run, so the fake's failures look like the real ones.
        self.fake.complete(spec.id, ok=ok, exit_code=MISSING_INPUT_EXIT)

    def finish_resize(self) -> None:
        self.fake.finish_resize()

    def break_node(self, node_id: str, exit_code: int, stderr: str) -> None:
        self.fake.break_node(node_id, exit_code=exit_code, stderr=stderr)

    def fail_resize(self, code: str, message: str, reached: int) -> None:
        self.fake.set_resize_error(code, message, reached=reached)

    def start(self, spec: TaskSpec) -> None:
        self.fake.start(spec.id)


class LocalKit(Kit):
    name = "local"

    def __init__(self, state_dir: Path) -> None:
        # Tasks really run (ffmpeg processes), gated by the pool size each test asks for.
        self.local = LocalBatchGateway(state_dir, job_id=JOB, pool_id=POOL, max_slots=1, run_tasks=True)
        self.gw = self.local

    def complete(self, spec: TaskSpec, *, ok: bool) -> None:
        deadline = time.monotonic() + 15
        while (self.local.task_state(spec.id) or ("",))[0] != "completed":
            assert time.monotonic() < deadline, f"local task {spec.id} did not complete"
            time.sleep(0.02)
        assert self.local.task_state(spec.id)[1] == ("success" if ok else "failure")

    def close(self) -> None:
        self.local.close()


class AzureKit(Kit):
    name = "azure"

    def __init__(self, standin: BatchStandin) -> None:
        self.standin = standin
        self.azure = standin.gateway(pool_id=POOL, job_id=JOB, slots_per_node=1)
        self.gw = self.azure
        self._clock = dt.datetime.now(dt.UTC)

    def complete(self, spec: TaskSpec, *, ok: bool) -> None:
        # Batch would run it; the stand-in is told the outcome, each one a millisecond after the previous.
        self._clock += dt.timedelta(milliseconds=1)
        self.standin.set_task(JOB, spec.id, exit_code=0 if ok else MISSING_INPUT_EXIT,
                              retry_count=0 if ok else spec.max_task_retry_count, at=self._clock)

    def finish_resize(self) -> None:
        self.standin.finish_resize(POOL)

    def break_node(self, node_id: str, exit_code: int, stderr: str) -> None:
        self.standin.break_node(POOL, node_id, exit_code=exit_code, stderr=stderr)

    def fail_resize(self, code: str, message: str, reached: int) -> None:
        self.standin.set_resize_error(POOL, code, message, reached=reached)

    def start(self, spec: TaskSpec) -> None:
        self._clock += dt.timedelta(milliseconds=1)
        assert self.standin.start_task(JOB, spec.id, self._clock) == "running"

    def close(self) -> None:
        self.azure.close()


@pytest.fixture(params=[pytest.param("fake", marks=pytest.mark.fast), "local", "azure"])
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kit]:
    k: Kit = FakeKit() if request.param == "fake" else LocalKit(tmp_path) if request.param == "local" \
        else AzureKit(request.getfixturevalue("batch_standin"))
    try:
        yield k
    finally:
        k.close()


def ready_pool_only(k: Kit, nodes: int = 0) -> BatchGateway:
    k.gw.ensure_pool(PoolSpec(id=POOL, slots_per_node=1, initial_dedicated_nodes=nodes))
    return k.gw


def ready(k: Kit, nodes: int = 0) -> BatchGateway:
    ready_pool_only(k, nodes).ensure_job(POOL)
    return k.gw


# -- pool and job -----------------------------------------------------------------------------------------


def test_pool_state_is_none_before_the_pool_exists(kit: Kit) -> None:
    assert kit.gw.pool_state() is None


def test_ensure_pool_and_job_are_idempotent(kit: Kit) -> None:
    spec = PoolSpec(id=POOL, slots_per_node=2, initial_dedicated_nodes=1)
    assert kit.gw.ensure_pool(spec) is True
    assert kit.gw.ensure_pool(spec) is False
    assert kit.gw.ensure_job(POOL) is True
    assert kit.gw.ensure_job(POOL) is False
    state = kit.gw.pool_state()
    assert state is not None
    assert (state.allocation_state, state.target_dedicated, state.target_spot, state.slots_per_node) == \
        ("steady", 1, 0, 2)
    assert kit.gw.task_counts().active == 0


def test_job_not_found_before_the_job_exists(kit: Kit) -> None:
    ready_pool_only(kit)
    with pytest.raises(JobNotFound):
        kit.gw.add_task(task("early"))
    with pytest.raises(JobNotFound):
        kit.gw.task_counts()
    kit.gw.ensure_job(POOL)
    assert kit.gw.add_task(task("early")) is True


def test_resize_changes_the_target(kit: Kit) -> None:
    gw = ready(kit)
    gw.resize(2, 1)
    state = gw.pool_state()
    assert state is not None and (state.target_dedicated, state.target_spot) == (2, 1)
    kit.finish_resize()
    state = gw.pool_state()
    assert state is not None and state.allocation_state == "steady"
    assert (state.current_dedicated, state.current_spot) == (2, 1)


def test_a_resize_in_progress_refuses_another_and_can_be_stopped(kit: Kit) -> None:
    gw = ready(kit, nodes=1)
    gw.resize(3, 0)
    state = gw.pool_state()
    assert state is not None
    if state.allocation_state == "steady":
        pytest.skip(f"{kit.name} pools reach their size at once: no resize is ever in progress")
    assert state.allocation_state == "resizing"
    with pytest.raises(PoolBusy):
        gw.resize(1, 0)
    gw.stop_resize()
    state = gw.pool_state()
    assert state is not None and state.allocation_state == "stopping"
    with pytest.raises(PoolBusy):
        gw.remove_nodes(["any"])


def test_a_resize_that_falls_short_reports_why_until_the_next_resize(kit: Kit) -> None:
    gw = ready(kit, nodes=1)
    gw.resize(4, 0)
    kit.fail_resize("AccountCoreQuotaReached", "The core quota was reached.", reached=2)
    state = gw.pool_state()
    assert state is not None and (state.allocation_state, state.current_dedicated, state.target_dedicated) == \
        ("steady", 2, 4)
    assert [(e.code, e.message) for e in state.resize_errors] == \
        [("AccountCoreQuotaReached", "The core quota was reached.")]
    gw.resize(2, 0)
    state = gw.pool_state()
    assert state is not None and state.resize_errors == ()


def test_a_running_task_is_counted_open_and_can_be_stopped(kit: Kit) -> None:
    gw = ready(kit, nodes=1)
    spec = task("runs")
    gw.add_task(spec)
    kit.start(spec)
    assert gw.task_status("runs") == "running" and gw.open_tasks() == {"runs": "running"}
    counts = gw.task_counts()
    assert (counts.active, counts.running) == (0, 1)
    assert gw.queued_tasks(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5), 10) == []
    assert gw.terminate_task("runs") is True
    assert gw.task_status("runs") == "completed"
    assert [(f.id, f.succeeded) for f in gw.finished_tasks_since(None)] == [("runs", False)]


def test_a_node_whose_start_task_failed_is_counted_listed_and_removed(kit: Kit) -> None:
    gw = ready(kit, nodes=2)
    kit.break_node("node-bad", 7, "apt-get: no network\n")
    state = gw.pool_state()
    assert state is not None and state.broken == 1
    (node,) = gw.broken_nodes()
    assert (node.id, node.state, node.exit_code) == ("node-bad", "starttaskfailed", 7)
    assert "no network" in node.stderr_tail and node.failure
    gw.remove_nodes(["node-bad"])
    kit.finish_resize()
    state = gw.pool_state()
    assert state is not None and (state.broken, state.target_dedicated, state.current_dedicated) == (0, 1, 1)
    assert gw.broken_nodes() == []


# -- tasks ------------------------------------------------------------------------------------------------


def test_the_same_task_twice_is_one_task(kit: Kit) -> None:
    gw = ready(kit)
    assert gw.add_task(task("twice")) is True
    assert gw.add_task(task("twice")) is False
    counts = gw.task_counts()
    assert (counts.active, counts.running, counts.completed) == (1, 0, 0)


def test_open_tasks_are_the_ones_not_completed(kit: Kit) -> None:
    with pytest.raises(JobNotFound):
        ready_pool_only(kit, nodes=1).open_tasks()
    gw = ready(kit, nodes=1)
    done, waiting = task("open-done", SUCCEEDING), task("open-waiting")
    gw.add_task(done)
    kit.complete(done, ok=True)
    gw.resize(0, 0)
    kit.finish_resize()
    gw.add_task(waiting)
    assert gw.open_tasks() == {"open-waiting": "active"}


def test_task_counts_reflect_active_tasks(kit: Kit) -> None:
    gw = ready(kit)  # no nodes: the tasks wait
    for i in range(3):
        assert gw.add_task(task(f"queued-{i}")) is True
    counts = gw.task_counts()
    assert (counts.active, counts.running, counts.completed, counts.succeeded, counts.failed) == (3, 0, 0, 0, 0)


def test_task_counts_carry_the_slots_the_tasks_ask_for(kit: Kit) -> None:
    """Batch's task counts call returns taskSlotCounts beside taskCounts: what the scaling policy counts."""
    kit.gw.ensure_pool(PoolSpec(id=POOL, slots_per_node=4))  # no nodes: the tasks wait
    kit.gw.ensure_job(POOL)
    for i, slots in enumerate((1, 1, 4)):
        assert kit.gw.add_task(dataclasses.replace(task(f"sized-{i}"), required_slots=slots)) is True
    counts = kit.gw.task_counts()
    assert (counts.active, counts.active_slots, counts.running, counts.running_slots) == (3, 6, 0, 0)


def test_terminate_ends_a_waiting_task_as_failed_once(kit: Kit) -> None:
    gw = ready(kit)
    gw.add_task(task("stop-me"))
    assert gw.terminate_task("stop-me") is True
    assert gw.terminate_task("stop-me") is False
    assert gw.terminate_task("never-added") is False
    (ended,) = gw.finished_tasks_since(None)
    assert (ended.id, ended.succeeded, ended.exit_code, ended.attempts) == ("stop-me", False, None, 1)
    assert "TaskEnded" in ended.failure_message
    counts = gw.task_counts()
    assert (counts.active, counts.completed, counts.failed) == (0, 1, 1)


# -- failures ---------------------------------------------------------------------------------------------


def test_failed_tasks_are_reported_with_exit_code_attempts_and_environment(kit: Kit) -> None:
    gw = ready(kit, nodes=1)  # one node: the local gateway runs the tasks one after another
    older, good, newer = task("fail-old"), task("ok", SUCCEEDING), task("fail-new")
    for spec, ok in ((older, False), (good, True), (newer, False)):
        assert gw.add_task(spec) is True
        kit.complete(spec, ok=ok)
    counts = gw.task_counts()
    assert (counts.active, counts.running, counts.completed, counts.succeeded, counts.failed) == (0, 0, 3, 1, 2)

    finished = gw.finished_tasks_since(None)
    assert [(f.id, f.succeeded) for f in finished] == [("fail-old", False), ("ok", True), ("fail-new", False)]
    assert len(gw.finished_tasks_since(None, 2)) == 2  # at most the limit (which ones: Batch lists in no order)
    failed = [f for f in finished if not f.succeeded]
    assert [f.id for f in failed] == ["fail-old", "fail-new"]
    for f in failed:
        assert isinstance(f.exit_code, int) and f.exit_code != 0
        assert f.attempts == 1 + older.max_task_retry_count  # the first try and one retry
        assert f.environment == dict(ENV)
        assert f.display_name == f"videos/{f.id}.mp4"
        assert f.state_transition_time.utcoffset() == dt.timedelta(0)
        assert f.finished_at.utcoffset() == dt.timedelta(0)
    first, last = failed
    assert first.state_transition_time < last.state_transition_time

    # The watermark is inclusive: a task exactly at it comes back, older ones do not.
    assert [f.id for f in gw.finished_tasks_since(last.state_transition_time)] == ["fail-new"]
    assert [f.id for f in gw.finished_tasks_since(first.state_transition_time)] == ["fail-old", "ok", "fail-new"]
    assert gw.finished_tasks_since(last.state_transition_time + dt.timedelta(milliseconds=1)) == []


def test_task_status_follows_the_task(kit: Kit) -> None:
    gw = ready(kit)  # no nodes: the task waits
    assert gw.task_status("nope") is None
    spec = task("status")
    gw.add_task(spec)
    assert gw.task_status("status") == "active"
    gw.resize(1, 0)
    kit.complete(spec, ok=False)
    assert gw.task_status("status") == "completed"


def test_finished_tasks_since_before_the_job_exists_is_job_not_found(kit: Kit) -> None:
    with pytest.raises(JobNotFound):
        kit.gw.finished_tasks_since(None)


def test_resize_before_the_pool_exists_is_job_not_found(kit: Kit) -> None:
    with pytest.raises(JobNotFound):
        kit.gw.resize(1, 0)


# -- clean-up of the job (issue 11) -------------------------------------------------------------------------


def test_completed_tasks_are_listed_by_age_and_deleted(kit: Kit) -> None:
    gw = ready(kit, nodes=1)
    done, waiting = task("done-1", SUCCEEDING), task("waiting-1")
    gw.add_task(done)
    kit.complete(done, ok=True)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    (listed,) = gw.completed_tasks(later, 10)
    assert (listed.id, listed.succeeded) == ("done-1", True)
    assert gw.completed_tasks(listed.state_transition_time, 10) == []  # strictly before
    gw.resize(0, 0)  # no nodes: the next task waits
    gw.add_task(waiting)
    assert gw.delete_task("done-1") is True
    assert gw.delete_task("done-1") is False
    assert gw.task_status("done-1") is None
    counts = gw.task_counts()
    assert (counts.completed, counts.active) == (0, 1)
    assert gw.add_task(done) is True  # the same id can be added again once deleted


def test_a_broken_node_list_is_empty_on_a_healthy_pool(kit: Kit) -> None:
    gw = ready(kit, nodes=1)
    assert gw.broken_nodes() == []
    state = gw.pool_state()
    assert state is not None and state.broken == 0 and state.resize_errors == ()


def test_local_task_folders_go_after_their_retention(tmp_path: Path) -> None:
    gw = LocalBatchGateway(tmp_path, job_id=JOB, pool_id=POOL, max_slots=1, run_tasks=True)
    try:
        gw.ensure_pool(PoolSpec(id=POOL, slots_per_node=1, initial_dedicated_nodes=1))
        gw.ensure_job(POOL)
        spec = TaskSpec(id="kept", display_name="kept.mp4", command_line=SUCCEEDING, resource_files=(),
                        output_files=(), retention_seconds=600)
        gw.add_task(spec)
        LocalKit.complete(type("K", (), {"local": gw})(), spec, ok=True)  # type: ignore[arg-type]
        folder = tmp_path / "batch" / "tasks" / JOB / "kept"
        assert (folder / "stderr.txt").exists()  # kept for the retention time
        assert gw.sweep_retention(time.time() + 60) == 0
        assert gw.sweep_retention(time.time() + 601) == 1
        assert not folder.exists()
        assert gw.task_status("kept") == "completed"  # the task itself stays until the monitor deletes it
        assert gw.delete_task("kept") is True and task_ids(gw) == []
    finally:
        gw.close()


def test_queued_tasks_are_listed_by_age_with_their_environment(kit: Kit) -> None:
    gw = ready(kit)  # no nodes: tasks wait
    gw.add_task(task("queued-old"))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    (queued,) = gw.queued_tasks(later, 10)
    assert queued.id == "queued-old" and queued.environment == dict(ENV)
    assert gw.queued_tasks(queued.created - dt.timedelta(seconds=1), 10) == []
    assert gw.queued_tasks(later, 0) == []
