"""Per-file status for operators: joins input, record and output listings (no listing of Batch tasks)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shared import naming
from shared.batch.gateway import JobNotFound, PoolState
from shared.pipeline import MONITOR_STATE_BLOB, Deps
from shared.records import Records

STATES = ("waiting", "queued", "converting", "done", "failed")


@dataclass
class FileStatus:
    """Where one input file stands."""

    name: str
    state: str  # one of STATES; "waiting" = not submitted yet (trigger pending, or missed: run backfill)
    dropped_at: dt.datetime
    output: str | None = None
    reason: str = ""
    finished_at: dt.datetime | None = None
    task_id: str | None = None


@dataclass
class StatusReport:
    files: list[FileStatus]
    pool: PoolState | None
    counts: Counter[str] = field(default_factory=Counter)
    pool_problems: list[str] = field(default_factory=list)  # resize errors, broken nodes (start task failures)

    @property
    def busy(self) -> bool:
        return any(self.counts[s] for s in ("waiting", "queued", "converting"))


def collect(deps: Deps, prefix: str = "", max_task_lookups: int = 200) -> StatusReport:
    """Three listings (inputs, records with metadata, outputs), then one task lookup per unfinished file, or one
    paged listing of the open tasks when there are more unfinished files than `max_task_lookups`."""
    s = deps.settings
    service = deps.storage.service
    inputs = [b for b in service.get_container_client(s.input_container).list_blobs(name_starts_with=prefix or None)
              if naming.is_mp4(b.name)]
    records = Records(deps.storage, s.state_container).list_all()
    outputs = {b.name: b.last_modified
               for b in service.get_container_client(s.output_container).list_blobs(name_starts_with=prefix or None)}
    lookups = 0
    open_tasks = _open_tasks_if_many(deps, inputs, records, outputs, max_task_lookups)
    files: list[FileStatus] = []
    for blob in inputs:
        etag = naming.clean_etag(blob.etag)
        status = FileStatus(blob.name, "waiting", blob.last_modified)
        try:
            status.output = naming.output_name(blob.name)
        except naming.UnmappableName:
            status.output = None
        record = records.get(blob.name)
        landed = outputs.get(status.output or "")
        if record is not None and record.etag == etag:
            status.task_id = record.task_id
            if record.state in ("failed", "rejected"):
                status.state = "failed"
            elif landed is not None and landed >= blob.last_modified:
                status.state, status.finished_at = "done", landed
            elif record.state == "unsubmitted":
                status.reason = f"its submit failed; reconcile submits it again ({record.reason})"
            elif record.task_id:
                if open_tasks is not None:  # many unfinished files: one paged listing instead of a GET each
                    task = open_tasks.get(record.task_id)
                    if task is None and lookups < max_task_lookups:  # completed (converting) or missing
                        lookups += 1
                        task = deps.gateway.task_status(record.task_id)
                else:
                    lookups += 1
                    task = deps.gateway.task_status(record.task_id)
                if task is None:  # recorded, but Batch has no such task: not queued anywhere
                    status.reason = "Batch has no task for it; reconcile submits it again"
                else:
                    status.state = {"running": "converting", "completed": "converting"}.get(task, "queued")
        elif landed is not None and landed >= blob.last_modified:
            status.state, status.finished_at = "done", landed
        if status.state == "failed":
            report = deps.storage.get_json(s.output_container, naming.report_name(blob.name)) or {}
            status.reason = report.get("reason", "failed (report not written yet)")
            finished = report.get("finished_at")
            status.finished_at = dt.datetime.fromisoformat(finished) if finished else None
            status.output = naming.report_name(blob.name)
        files.append(status)
    monitor = deps.storage.get_json(s.state_container, MONITOR_STATE_BLOB) or {}
    report = StatusReport(files, deps.gateway.pool_state(), pool_problems=pool_problems(monitor))
    report.counts.update(f.state for f in files)
    return report


def _open_tasks(deps: Deps) -> dict[str, str]:
    try:
        return deps.gateway.open_tasks()
    except JobNotFound:
        return {}


def _open_tasks_if_many(deps: Deps, inputs: list[Any], records: dict[str, Any], outputs: dict[str, Any],
                        max_lookups: int) -> dict[str, str] | None:
    """The open tasks in one paged listing when more unfinished files than `max_lookups` would each need a GET."""
    unfinished = 0
    for blob in inputs:
        record = records.get(blob.name)
        if record is None or record.etag != naming.clean_etag(blob.etag) or record.state != "submitted":
            continue
        try:
            landed = outputs.get(naming.output_name(blob.name))
        except naming.UnmappableName:
            landed = None
        if landed is None or landed < blob.last_modified:
            unfinished += 1
    return _open_tasks(deps) if unfinished > max_lookups else None


def pool_problems(monitor: dict[str, Any]) -> list[str]:
    """What the monitor last saw wrong with the pool: Batch's resize errors and the last broken node."""
    problems = [f"resize error {line}" for line in monitor.get("resize_errors", [])]
    node = monitor.get("node_failure")
    if node and monitor.get("broken_now"):
        tail = (node.get("stderr_tail") or "").strip().splitlines()[-1:] or [""]
        problems.append(f"node {node['node']} {node['state']} (exit code {node.get('exit_code')}): "
                        f"{node.get('failure') or '-'}" + (f"; stderr: {tail[0]}" if tail[0] else ""))
    return problems


def as_json(report: StatusReport) -> str:
    def fmt(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return json.dumps({
        "counts": {state: report.counts[state] for state in STATES},
        "pool": None if report.pool is None else {
            "current": report.pool.current_dedicated + report.pool.current_spot,
            "target": report.pool.target_dedicated + report.pool.target_spot,
            "allocation_state": report.pool.allocation_state,
            "problems": report.pool_problems,
        },
        "files": [{"input": f.name, "state": f.state, "output": f.output, "reason": f.reason,
                   "dropped_at": fmt(f.dropped_at), "finished_at": fmt(f.finished_at), "task_id": f.task_id}
                  for f in report.files],
    }, indent=2, ensure_ascii=False)
