"""Failure reports: one written beside a rejected name's record (submit), one per newly failed task (monitor)."""

from __future__ import annotations

import datetime as dt
import logging

from shared.domain import file_life, naming, planning, reports
from shared.domain.monitor_state import MonitorState
from shared.events import event
from shared.ports.batch import FinishedTask
from shared.ports.deps import Deps
from shared.usecases.file_records import FileRecords


def write_report(
    deps: Deps, name: str, etag: str, *, task_id: str | None, exit_code: int | None, reason: str,
    stderr_tail: str, attempts: int, finished_at: dt.datetime | None = None, logs: str | None = None,
) -> str:
    report = reports.build_report(
        input_name=name, etag=etag, task_id=task_id, exit_code=exit_code, reason=reason,
        stderr_tail=stderr_tail, attempts=attempts, finished_at=finished_at or deps.now(), logs=logs,
    )
    path = naming.report_name(name)
    deps.storage.put_json(deps.settings.output_container, path, report)
    return path


def report_failures(deps: Deps, state: MonitorState) -> list[str]:
    """Reports for failed tasks since the watermark; ids at the watermark are remembered, so none twice."""
    since = state.failed_since
    seen_at_since = set(state.seen_at_since)
    reported: list[str] = []
    for task in deps.gateway.failed_tasks_since(since):
        if task.id in seen_at_since and since is not None and task.state_transition_time <= since:
            continue
        path = report_failure(deps, task)
        if path:
            reported.append(path)
        if since is None or task.state_transition_time > since:
            since = task.state_transition_time
            seen_at_since = set()
        seen_at_since.add(task.id)
    if since is not None:
        state.failed_since = since
        state.seen_at_since = tuple(sorted(seen_at_since))
    return reported


def report_failure(deps: Deps, task: FinishedTask) -> str | None:
    s = deps.settings
    name = task.environment.get(planning.ENV_INPUT_BLOB)
    etag = task.environment.get(planning.ENV_INPUT_ETAG, "")
    if not name:
        event("failed-task-unknown", logging.WARNING, task_id=task.id, reason=task.failure_message)
        return None
    current = deps.storage.etag_of(s.input_container, name)
    if current is not None and naming.clean_etag(current) != etag:
        event("failed-superseded", name=name, etag=etag, task_id=task.id, current_etag=naming.clean_etag(current))
        return None
    logs = naming.logs_folder(task.id)
    tail = deps.storage.read_tail(s.output_container, f"{logs}/stderr.txt") or ""
    reason = reports.reason_from(tail, task.failure_message, task.exit_code)
    if current is None:
        reason += " (the input has since been deleted)"
    path = write_report(
        deps, name, etag, task_id=task.id, exit_code=task.exit_code, reason=reason, stderr_tail=tail,
        attempts=task.attempts, finished_at=task.finished_at, logs=logs,
    )
    FileRecords.of(deps).apply(name, etag, lambda record: file_life.failed(record, reason, path))
    event("failed", logging.WARNING, name=name, etag=etag, task_id=task.id, exit_code=task.exit_code,
          reason=reason, report=path, attempts=task.attempts)
    return path
