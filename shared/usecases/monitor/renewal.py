"""SAS mode: queued tasks whose node URLs would expire before they can run are resubmitted with fresh URLs.

A task's URLs are signed at submit time for TASK_MAX_WALL_CLOCK_SECONDS + 12 h. A task still queued 11 h after
it was added (a backlog) has less than the wall clock + 1 h left, so it could start and be unable to download its
input or upload its MP3, and Batch retries neither. Batch cannot change a task's resource files, and the task id
is fixed per blob version, so the task is deleted and the same version is submitted again (same id, new URLs).
With a pool identity there is no SAS and nothing to renew.
"""

from __future__ import annotations

import datetime as dt
import logging

from shared.domain import naming, planning
from shared.domain.monitor_state import MonitorState
from shared.events import event
from shared.ports.batch import GatewayError
from shared.ports.deps import Deps
from shared.run_deadline import Deadline
from shared.settings import URL_GRACE_SECONDS
from shared.usecases.submit import submit_blob

RENEW_MARGIN_SECONDS = 3600  # renew once a queued task's URLs have less than the wall clock + this left
RENEW_BATCH = 100  # tasks renewed per run at most (two requests each)
CHECK_EVERY_SECONDS = 600  # how often the monitor looks (one listing); a task ages 12 h before it matters


def renew_old_urls(deps: Deps, state: MonitorState, active: int, now: float, deadline: Deadline | None = None) -> int:
    """Resubmit queued tasks added more than (12 h - margin) ago; returns how many were renewed."""
    if deps.settings.pool_identity_id or active <= 0 or now - state.renew_checked_at < CHECK_EVERY_SECONDS:
        return 0
    state.renew_checked_at = now
    cutoff = dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(seconds=URL_GRACE_SECONDS - RENEW_MARGIN_SECONDS)
    s = deps.settings
    renewed = 0
    try:
        for task in deps.gateway.queued_tasks(cutoff, RENEW_BATCH):
            if deadline is not None and deadline.passed():
                break  # the rest are renewed by a later run (they are listed again: still queued, still old)
            name = task.environment.get(planning.ENV_INPUT_BLOB)
            etag = task.environment.get(planning.ENV_INPUT_ETAG, "")
            current = deps.storage.etag_of(s.input_container, name) if name else None
            if not name or current is None or naming.clean_etag(current) != etag:
                continue  # deleted or overwritten: the task fails (and is reported) or is superseded as usual
            if deps.gateway.delete_task(task.id):
                # The same conversion, not a new one: it keeps the preset it was planned with, whatever its
                # folder's settings file says now (converting again after a change is the user's act).
                result = submit_blob(deps.storage.blob(s.input_container, name), deps,
                                     preset=task.environment.get(planning.ENV_PRESET))
                event("urls-renewed", logging.WARNING, name=name, task_id=task.id, status=result.status,
                      queued_since=task.created.isoformat())
                renewed += 1
    except GatewayError as exc:  # the file's record says "unsubmitted" then, and reconcile submits it
        event("renewal-deferred", logging.WARNING, error=str(exc))
    return renewed
