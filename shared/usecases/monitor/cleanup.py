"""Keeping the persistent job small: delete tasks whose outcome is recorded, paced to the completions, per run."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from shared.domain.monitor_state import MonitorState
from shared.events import event
from shared.ports.batch import GatewayError, Throttled
from shared.ports.deps import Deps
from shared.run_deadline import Deadline
from shared.usecases.monitor.outcomes import outcome_recorded

DELETE_BATCH = 100  # tasks a monitor run may always delete (the floor of the paced bound)
DELETE_THREADS = 8  # DELETEs in flight at once (one Batch client; azure-core pipelines are thread-safe)
DELETE_BUDGET_SECONDS = 20.0  # a run stops issuing DELETEs after this (a share of the one-minute timer period)
DELETE_LATENCY_SECONDS = 0.05  # what one DELETE is assumed to take in-region, for the bound below
MAX_DELETES_PER_RUN = int(DELETE_THREADS * DELETE_BUDGET_SECONDS / DELETE_LATENCY_SECONDS)  # 3,200


def delete_bound(completed: int, completed_before: int | None) -> int:
    """Tasks this run may list and delete: twice the tasks completed since the previous run (so a backlog
    drains while work goes on) plus those left from earlier runs, at least DELETE_BATCH, at most what the thread
    pool sends in the time budget (MAX_DELETES_PER_RUN)."""
    before = completed if completed_before is None else min(completed_before, completed)
    new = completed - before
    return max(DELETE_BATCH, min(MAX_DELETES_PER_RUN, 2 * new + before))


def delete_finished(deps: Deps, state: MonitorState, completed: int, now: float,
                    budget_s: float | None = None, run_deadline: Deadline | None = None) -> int:
    """Delete completed tasks older than the task retention whose outcome is recorded, up to `delete_bound`.

    A listing paged up to the bound (1,000 a page), then the DELETEs, DELETE_THREADS at a time, until the list
    ends, `budget_s` (DELETE_BUDGET_SECONDS) is spent or Batch throttles (ServerBusy): what is left waits for the
    next run. Nothing when the job has no completed task, or once the timer run's deadline has passed. Deleting a
    task also removes its folder from the node.
    """
    if completed <= 0 or (run_deadline is not None and run_deadline.passed()):
        return 0
    deadline = time.monotonic() + (DELETE_BUDGET_SECONDS if budget_s is None else budget_s)
    bound = delete_bound(completed, state.completed)
    cutoff = dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(seconds=deps.settings.task_retention_seconds)
    try:
        candidates = deps.gateway.completed_tasks(cutoff, bound)
    except GatewayError as exc:
        event("cleanup-deferred", logging.WARNING, error=str(exc))
        return 0
    ids = [t.id for t in candidates if outcome_recorded(t, state)]
    deleted, stopped = _delete_all(deps.gateway.delete_task, ids, deadline)
    if deleted or stopped:
        event("tasks-deleted", logging.WARNING if stopped else logging.INFO, deleted=deleted, listed=len(candidates),
              bound=bound, stopped=stopped)
    return deleted


def _delete_all(delete: Callable[[str], bool], ids: list[str], deadline: float) -> tuple[int, str]:
    """Run `delete` over `ids` on a small thread pool; returns (deleted, why it stopped early or "")."""
    deleted = 0
    stopped = ""
    pending: set[Future[bool]] = set()
    todo = iter(ids)

    def collect(done: set[Future[bool]]) -> None:
        nonlocal deleted, stopped
        for f in done:
            try:
                deleted += bool(f.result())
            except Throttled as exc:
                stopped = stopped or f"throttled: {exc}"
            except GatewayError as exc:
                stopped = stopped or f"error: {exc}"

    with ThreadPoolExecutor(DELETE_THREADS, thread_name_prefix="cleanup") as pool:
        for task_id in todo:
            if stopped:
                break
            if time.monotonic() >= deadline:
                stopped = "time budget spent"
                break
            pending.add(pool.submit(delete, task_id))
            if len(pending) >= DELETE_THREADS:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                collect(done)
        collect(wait(pending).done)
    return deleted, stopped
