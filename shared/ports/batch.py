"""The Batch port: the task model and the interface every Batch adapter (local, Azure) meets."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol


class GatewayError(Exception):
    """A Batch operation failed in a way the caller should report."""


class JobNotFound(GatewayError):
    """The persistent job (or its pool) does not exist yet."""


class Throttled(GatewayError):
    """Batch is shedding load (503 ServerBusy, 429) even after the retries: send fewer requests for now."""


class PoolBusy(GatewayError):
    """The pool cannot be resized now (it is resizing, stopping, or under autoscale)."""


@dataclass(frozen=True)
class ResourceFile:
    """A file the task downloads before it runs: URL -> path relative to the working directory."""

    http_url: str
    file_path: str


@dataclass(frozen=True)
class OutputFile:
    """Batch output-file rule: files matching `pattern` are uploaded on `upload_condition`.

    `path` is the blob name for a single-file pattern, or the virtual folder for a wildcard.
    `upload_condition` is one of "tasksuccess", "taskfailure", "taskcompletion".
    `upload_headers` are Put Blob request headers the upload carries (content type, `x-ms-meta-*` metadata).
    """

    pattern: str
    container_url: str
    path: str
    upload_condition: str
    upload_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    """One conversion task as Batch sees it; identical for every adapter."""

    id: str
    display_name: str
    command_line: str
    resource_files: tuple[ResourceFile, ...]
    output_files: tuple[OutputFile, ...]
    environment: tuple[tuple[str, str], ...] = ()
    max_task_retry_count: int = 1
    max_wall_clock_seconds: int = 3600
    retention_seconds: int = 7 * 24 * 3600
    required_slots: int = 1  # of the node's task slots (shared/domain/task_slots.py)

    def env(self) -> dict[str, str]:
        return dict(self.environment)


@dataclass(frozen=True)
class PoolSpec:
    """What the pipeline asks of the pool; adapters add their own machine details."""

    id: str
    slots_per_node: int
    initial_dedicated_nodes: int = 0
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TaskCounts:
    """Job task counts, from one cheap call (Batch's get_job_task_counts), with the slots the active and running
    tasks ask for (its `taskSlotCounts`, in the same response): what the scaling policy counts."""

    active: int = 0
    running: int = 0
    completed: int = 0
    succeeded: int = 0
    failed: int = 0
    active_slots: int = 0
    running_slots: int = 0


@dataclass(frozen=True)
class ResizeError:
    """Why Batch could not reach the pool's target (quota, allocation failure, resize timeout)."""

    code: str
    message: str


@dataclass(frozen=True)
class PoolState:
    """The pool as Batch reports it and the scaling policy reads it."""

    allocation_state: str  # "steady" | "resizing" | "stopping"
    current_dedicated: int
    current_spot: int
    target_dedicated: int
    target_spot: int
    preempted: int = 0  # Spot nodes preempted: in the pool, doing no work
    auto_scale: bool = False
    slots_per_node: int = 1
    broken: int = 0  # nodes in the pool that cannot take tasks (start task failed, unusable, unknown)
    resize_errors: tuple[ResizeError, ...] = ()
    deleting: bool = False  # the pool is being deleted: create it again once it is gone


@dataclass(frozen=True)
class BrokenNode:
    """A node that counts in the pool's size but cannot take tasks, with what its start task said."""

    id: str
    state: str  # "starttaskfailed" | "unusable" | "unknown"
    exit_code: int | None = None
    failure: str = ""
    stderr_tail: str = ""


@dataclass(frozen=True)
class QueuedTask:
    """A task still waiting for a node, with the environment that names its input."""

    id: str
    created: dt.datetime
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CompletedTask:
    """A completed task, as the clean-up of the job needs it."""

    id: str
    succeeded: bool
    state_transition_time: dt.datetime


@dataclass(frozen=True)
class FinishedTask:
    """A completed task, succeeded or failed, with what recording its outcome (and a failure report) needs."""

    id: str
    display_name: str
    succeeded: bool
    exit_code: int | None
    failure_message: str
    attempts: int
    finished_at: dt.datetime
    state_transition_time: dt.datetime
    environment: dict[str, str] = field(default_factory=dict)


class BatchGateway(Protocol):
    """Everything the pipeline asks of Batch. Adapters: LocalBatchGateway, AzureBatchGateway."""

    def ensure_pool(self, spec: PoolSpec) -> bool:
        """Create the pool when missing; True when this call created it."""

    def ensure_job(self, pool_id: str) -> bool:
        """Create the persistent job on the pool when missing; True when created."""

    def add_task(self, task: TaskSpec) -> bool:
        """Add a task; True when added, False when a task with its id exists already."""

    def terminate_task(self, task_id: str) -> bool:
        """Stop a queued or running task (it completes as failed, uploading no output); False if already done."""

    def task_status(self, task_id: str) -> str | None:
        """One task's state ("active", "running", "completed"), or None when it does not exist."""

    def task_counts(self) -> TaskCounts:
        """Counts of the job's tasks by state (one call)."""

    def open_tasks(self) -> dict[str, str]:
        """Every task not completed yet: id -> state ("active", "running"); pages of 1,000 ids."""

    def pool_state(self) -> PoolState | None:
        """The pool's allocation state and node counts, or None when it does not exist."""

    def resize(self, dedicated: int, spot: int) -> None:
        """Ask for a new pool size; never waits for it; shrinking lets running tasks finish."""

    def finished_tasks_since(self, since: dt.datetime | None, limit: int | None = None) -> list[FinishedTask]:
        """Completed tasks, succeeded and failed, whose state changed at or after `since` (all when None), oldest
        first; at most `limit` of them (pages of 1,000; no page past it), so `limit` returned means there may be
        more, in any order (Batch lists tasks in no time order)."""

    def completed_tasks(self, before: dt.datetime, limit: int) -> list[CompletedTask]:
        """Up to `limit` tasks completed before `before` (pages of up to 1,000), in no particular order."""

    def queued_tasks(self, created_before: dt.datetime, limit: int) -> list[QueuedTask]:
        """Up to `limit` tasks still queued (active) that were added before `created_before` (one request)."""

    def delete_task(self, task_id: str) -> bool:
        """Delete a task and its files on the node; False when it does not exist."""

    def stop_resize(self) -> None:
        """Stop the pool's resize in progress (the pool keeps the nodes it has)."""

    def broken_nodes(self) -> list[BrokenNode]:
        """Nodes that cannot take tasks, with their start task's exit code and stderr tail."""

    def remove_nodes(self, node_ids: list[str]) -> None:
        """Remove these nodes from the pool (Batch then allocates others when the target grows again)."""
