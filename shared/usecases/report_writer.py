"""Writes a failure report beside the would-be MP3: for a rejected name (submit) and a failed task (the monitor)."""

from __future__ import annotations

import datetime as dt

from shared.domain import failure_report, naming
from shared.ports.deps import Deps


def write_report(
    deps: Deps, name: str, etag: str, *, task_id: str | None, exit_code: int | None, reason: str,
    stderr_tail: str, attempts: int, finished_at: dt.datetime | None = None, logs: str | None = None,
    path: str | None = None,
) -> str:
    """Write the report for this version (beside its would-be MP3 unless `path` says where); returns its path."""
    report = failure_report.build_report(
        input_name=name, etag=etag, task_id=task_id, exit_code=exit_code, reason=reason,
        stderr_tail=stderr_tail, attempts=attempts, finished_at=finished_at or deps.now(), logs=logs,
    )
    path = path or naming.report_name(name)
    deps.storage.put_json(deps.settings.output_container, path, report)
    return path
