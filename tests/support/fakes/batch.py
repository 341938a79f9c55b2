"""An in-memory Batch port: one pool and one job, tasks moved by the test (start, complete), nodes it breaks."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from shared.ports.batch import (
    BrokenNode,
    CompletedTask,
    FinishedTask,
    JobNotFound,
    PoolBusy,
    PoolSpec,
    PoolState,
    QueuedTask,
    ResizeError,
    TaskCounts,
    TaskSpec,
)

TERMINATED = "TaskEnded: the task was terminated"


@dataclass
class _Task:
    spec: TaskSpec
    seq: int
    created: dt.datetime
    state: str = "active"
    state_time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    succeeded: bool = False
    exit_code: int | None = None
    failure_message: str = ""
    retry_count: int = 0


class MemoryBatch:
    """The Batch port in dicts. A resize leaves the pool "resizing" until `finish_resize`, as Batch does."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.pool: PoolState | None = None
        self.job = False
        self.tasks: dict[str, _Task] = {}
        self.broken: dict[str, BrokenNode] = {}
        self._seq = itertools.count()

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    def _job(self) -> None:
        if not self.job:
            raise JobNotFound("job does not exist")

    def _pool(self) -> PoolState:
        if self.pool is None:
            raise JobNotFound("pool does not exist")
        return self.pool

    # -- the port ------------------------------------------------------------------------------------------------
    def ensure_pool(self, spec: PoolSpec) -> bool:
        if self.pool is not None:
            return False
        n = spec.initial_dedicated_nodes
        self.pool = PoolState("steady", n, 0, n, 0, slots_per_node=spec.slots_per_node)
        return True

    def ensure_job(self, pool_id: str) -> bool:
        created, self.job = not self.job, True
        return created

    def add_task(self, task: TaskSpec) -> bool:
        self._job()
        if task.id in self.tasks:
            return False
        now = self._now()
        self.tasks[task.id] = _Task(task, next(self._seq), now, state_time=now)
        return True

    def terminate_task(self, task_id: str) -> bool:
        task = self.tasks.get(task_id)
        if task is None or task.state == "completed":
            return False
        self.complete(task_id, ok=False, exit_code=None, failure=TERMINATED, retries=0)
        return True

    def task_status(self, task_id: str) -> str | None:
        task = self.tasks.get(task_id)
        return None if task is None else task.state

    def task_counts(self) -> TaskCounts:
        self._job()
        states = [(t.state, t.succeeded) for t in self.tasks.values()]
        done = [ok for state, ok in states if state == "completed"]
        slots = {state: sum(t.spec.required_slots for t in self.tasks.values() if t.state == state)
                 for state in ("active", "running")}
        return TaskCounts(active=sum(s == "active" for s, _ in states), running=sum(s == "running" for s, _ in states),
                          completed=len(done), succeeded=sum(done), failed=len(done) - sum(done),
                          active_slots=slots["active"], running_slots=slots["running"])

    def open_tasks(self) -> dict[str, str]:
        self._job()
        return {tid: t.state for tid, t in self.tasks.items() if t.state != "completed"}

    def pool_state(self) -> PoolState | None:
        return None if self.pool is None else replace(self.pool, broken=len(self.broken))

    def resize(self, dedicated: int, spot: int) -> None:
        pool = self._pool()
        if pool.auto_scale or pool.allocation_state != "steady":
            raise PoolBusy(f"pool is {pool.allocation_state}; resize later")
        self.pool = replace(pool, allocation_state="resizing", target_dedicated=dedicated, target_spot=spot,
                            resize_errors=())

    def finished_tasks_since(self, since: dt.datetime | None, limit: int | None = None) -> list[FinishedTask]:
        self._job()
        done = sorted((t for t in self._completed() if since is None or t.state_time >= since),
                      key=lambda t: (t.state_time, t.seq))
        return [FinishedTask(t.spec.id, t.spec.display_name, t.succeeded, t.exit_code, t.failure_message,
                             t.retry_count + 1, t.state_time, t.state_time, t.spec.env())
                for t in done[:limit]]

    def completed_tasks(self, before: dt.datetime, limit: int) -> list[CompletedTask]:
        self._job()
        done = [CompletedTask(t.spec.id, t.succeeded, t.state_time) for t in self._completed() if t.state_time < before]
        return done[:max(limit, 0)]

    def queued_tasks(self, created_before: dt.datetime, limit: int) -> list[QueuedTask]:
        self._job()
        queued = [QueuedTask(t.spec.id, t.created, t.spec.env()) for t in sorted(self.tasks.values(),
                  key=lambda t: t.seq) if t.state == "active" and t.created < created_before]
        return queued[:max(limit, 0)]

    def delete_task(self, task_id: str) -> bool:
        return self.tasks.pop(task_id, None) is not None

    def stop_resize(self) -> None:
        pool = self._pool()
        if pool.allocation_state != "resizing":
            raise PoolBusy("pool is not resizing")
        self.pool = replace(pool, allocation_state="stopping")

    def broken_nodes(self) -> list[BrokenNode]:
        return list(self.broken.values())

    def remove_nodes(self, node_ids: list[str]) -> None:
        pool = self._pool()
        if pool.allocation_state != "steady":
            raise PoolBusy(f"pool is {pool.allocation_state}; cannot remove nodes now")
        for node_id in node_ids:
            del self.broken[node_id]
        n = len(node_ids)
        self.pool = replace(pool, allocation_state="resizing", target_dedicated=max(pool.target_dedicated - n, 0),
                            current_dedicated=max(pool.current_dedicated - n, 0), resize_errors=())

    # -- what Batch does on its own, moved by the test -----------------------------------------------------------
    def _completed(self) -> list[_Task]:
        return sorted((t for t in self.tasks.values() if t.state == "completed"), key=lambda t: (t.state_time, t.seq))

    def start(self, task_id: str) -> None:
        """A node picks the task up."""
        task = self.tasks[task_id]
        task.state, task.state_time = "running", self._now()

    def complete(self, task_id: str, *, ok: bool, exit_code: int | None = 1, failure: str = "",
                 retries: int | None = None) -> None:
        """The task ends: a success, or a failure after `retries` retries (its spec's maximum when None)."""
        task = self.tasks[task_id]
        task.state, task.state_time, task.succeeded = "completed", self._now(), ok
        task.exit_code = 0 if ok else exit_code
        task.failure_message = "" if ok else failure or f"FailureExitCode: the task exited with code {exit_code}"
        task.retry_count = 0 if ok else task.spec.max_task_retry_count if retries is None else retries

    def finish_resize(self) -> None:
        """The pool reaches its target (or, after stop_resize, keeps the nodes it has) and is steady again."""
        pool = self._pool()
        if pool.allocation_state == "resizing":
            pool = replace(pool, current_dedicated=pool.target_dedicated, current_spot=pool.target_spot)
        self.pool = replace(pool, allocation_state="steady")

    def break_node(self, node_id: str, *, exit_code: int | None = 100, stderr: str = "",
                   failure: str = "FailureExitCode: The task process exited with an unexpected exit code") -> None:
        """One of the pool's current dedicated nodes fails its start task."""
        self.broken[node_id] = BrokenNode(node_id, "starttaskfailed", exit_code, failure, stderr)

    def set_resize_error(self, code: str, message: str, *, reached: int | None = None) -> None:
        """The resize ends short of its target: steady, with Batch's error."""
        pool = self._pool()
        self.pool = replace(pool, allocation_state="steady", resize_errors=(ResizeError(code, message),),
                            current_dedicated=pool.current_dedicated if reached is None else reached)
