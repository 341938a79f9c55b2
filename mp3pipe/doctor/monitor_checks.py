"""The doctor's check of the monitor timer: when it last ran (its state blob), stale past 3 periods or 15 minutes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mp3pipe.doctor.model import OK, PROBLEM, UNREAD, Deployment
from shared.domain.monitor_state import HEARTBEAT_SECONDS, MONITOR_STATE_BLOB, MonitorState
from shared.ports.storage import Storage

STALE_FLOOR_SECONDS = 900.0  # the heartbeat alert's window: 15 minutes
CHECK = "monitor heartbeat"


def schedule_period(schedule: str) -> float:
    """Seconds between two runs of an NCRONTAB schedule (second minute hour day month weekday), from now."""
    from croniter import croniter

    it = croniter(schedule, dt.datetime.now(dt.UTC), second_at_beginning=True)
    first = it.get_next(float)
    return it.get_next(float) - first


def stale_after(schedule: str) -> float:
    """How old the monitor's last run may be: 3 periods, at least 15 minutes (and more than the heartbeat write)."""
    return max(3 * schedule_period(schedule), STALE_FLOOR_SECONDS, 2 * HEARTBEAT_SECONDS)


def check_monitor(d: Deployment, storage: Storage, now: float) -> None:
    from azure.core.exceptions import AzureError

    s = d.settings
    where = f"{s.state_container}/{MONITOR_STATE_BLOB}"
    try:
        state = MonitorState.from_json(storage.get_json(s.state_container, MONITOR_STATE_BLOB))
    except AzureError as exc:
        d.add(CHECK, UNREAD, f"cannot read {where}: {_why(exc)}",
              f"your sign-in needs Storage Blob Data Reader on {d.resource_id('storage')}")
        return
    fix = (f"the monitor is the only thing that shrinks the pool: start the app (`az functionapp start -g {d.group} "
           f"-n {d.app}`), check the findings above, and the portal: Function App {d.app} > Monitoring > Log stream")
    if state.ran_at is None:
        d.add(CHECK, PROBLEM, f"the monitor has never recorded a run in {where}", fix)
        return
    age = now - state.ran_at
    limit = stale_after(s.monitor_schedule)
    at = dt.datetime.fromtimestamp(state.ran_at, dt.UTC)
    when = f"the monitor last ran {_ago(age)} ago ({at:%Y-%m-%d %H:%M} UTC)"
    if age > limit:
        d.add(CHECK, PROBLEM, f"{when}, more than {_ago(limit)} (MONITOR_SCHEDULE={s.monitor_schedule}): the pool "
              "stays at its last size and failures go unreported", fix)
    else:
        d.add(CHECK, OK, when)


def _ago(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _why(exc: Any) -> str:
    status = getattr(exc, "status_code", None)
    message = (getattr(exc, "message", None) or str(exc)).splitlines()[0]
    return f"{status}: {message}" if status else message
