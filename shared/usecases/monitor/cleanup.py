"""Keeping the persistent job small: delete tasks whose outcome is recorded, a bounded batch per monitor run."""

from __future__ import annotations

import datetime as dt
import logging

from shared.domain.monitor_state import MonitorState
from shared.events import event
from shared.ports.batch import CompletedTask, GatewayError
from shared.ports.deps import Deps

DELETE_BATCH = 100  # tasks deleted per monitor run at most (one request each): 144,000 a day at one run a minute


def outcome_recorded(task: CompletedTask, state: MonitorState) -> bool:
    """A succeeded task's MP3 is in storage (Batch uploads it before the task completes as a success); a failed
    one is recorded once the failure watermark has passed it (its report is written, or it was superseded)."""
    if task.succeeded:
        return True
    since = state.failed_since
    if since is None:
        return False
    return task.state_transition_time < since or (
        task.state_transition_time == since and task.id in state.seen_at_since
    )


def delete_finished(deps: Deps, state: MonitorState, completed: int, now: float) -> int:
    """Delete up to DELETE_BATCH completed tasks older than the task retention whose outcome is recorded.

    One listing (a single page) plus one request per deleted task; nothing when the job has no completed task.
    Deleting a task also removes its folder from the node (as the retention time would).
    """
    if completed <= 0:
        return 0
    cutoff = dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(seconds=deps.settings.task_retention_seconds)
    try:
        candidates = deps.gateway.completed_tasks(cutoff, DELETE_BATCH)
        deleted = 0
        for task in candidates:
            if outcome_recorded(task, state):
                deleted += deps.gateway.delete_task(task.id)
    except GatewayError as exc:
        event("cleanup-deferred", logging.WARNING, error=str(exc))
        return 0
    if deleted:
        event("tasks-deleted", deleted=deleted, listed=len(candidates))
    return deleted
