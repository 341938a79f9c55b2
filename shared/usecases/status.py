"""Per-file status for operators: joins input, record and output listings (no listing of Batch tasks)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field

from shared.domain import naming
from shared.domain.monitor_state import MONITOR_STATE_BLOB, MonitorState
from shared.domain.records import FileRecord, FileState, RecordState, mp3_landed
from shared.ports.batch import JobNotFound, PoolState
from shared.ports.deps import Deps
from shared.ports.storage import BlobInfo
from shared.usecases.records import Records

STATES = tuple(FileState)
UNFINISHED = (FileState.WAITING, FileState.QUEUED, FileState.CONVERTING)


@dataclass
class FileStatus:
    """Where one input file stands."""

    name: str
    state: FileState
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
        return any(self.counts[s] for s in UNFINISHED)


def collect(deps: Deps, prefix: str = "", max_task_lookups: int = 200) -> StatusReport:
    """Three listings (inputs, records with metadata, outputs), then one task lookup per unfinished file, or one
    paged listing of the open tasks when there are more unfinished files than `max_task_lookups`."""
    s = deps.settings
    inputs = [b for b in deps.storage.list_blobs(s.input_container, prefix) if naming.is_mp4(b.name)]
    records = Records(deps.storage, s.state_container).list_all()
    outputs = {b.name: b.last_modified for b in deps.storage.list_blobs(s.output_container, prefix)}
    lookups = 0
    open_tasks = _open_tasks_if_many(deps, inputs, records, outputs, max_task_lookups)
    files: list[FileStatus] = []
    for blob in inputs:
        etag = naming.clean_etag(blob.etag)
        status = FileStatus(blob.name, FileState.WAITING, blob.last_modified)
        try:
            status.output = naming.output_name(blob.name)
        except naming.UnmappableName:
            status.output = None
        record = records.get(blob.name)
        landed = outputs.get(status.output or "")
        if record is not None and record.etag == etag:
            status.task_id = record.task_id
            if record.state in (RecordState.FAILED, RecordState.REJECTED):
                status.state = FileState.FAILED
            elif mp3_landed(landed, blob.last_modified):
                status.state, status.finished_at = FileState.DONE, landed
            elif record.state == RecordState.UNSUBMITTED:
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
                    status.state = FileState.CONVERTING if task in ("running", "completed") else FileState.QUEUED
        elif mp3_landed(landed, blob.last_modified):
            status.state, status.finished_at = FileState.DONE, landed
        if status.state == FileState.FAILED:
            report = deps.storage.get_json(s.output_container, naming.report_name(blob.name)) or {}
            status.reason = report.get("reason", "failed (report not written yet)")
            finished = report.get("finished_at")
            status.finished_at = dt.datetime.fromisoformat(finished) if finished else None
            status.output = naming.report_name(blob.name)
        files.append(status)
    monitor = MonitorState.from_json(deps.storage.get_json(s.state_container, MONITOR_STATE_BLOB))
    report = StatusReport(files, deps.gateway.pool_state(), pool_problems=pool_problems(monitor))
    report.counts.update(f.state for f in files)
    return report


def _open_tasks(deps: Deps) -> dict[str, str]:
    try:
        return deps.gateway.open_tasks()
    except JobNotFound:
        return {}


def _open_tasks_if_many(deps: Deps, inputs: list[BlobInfo], records: dict[str, FileRecord],
                        outputs: dict[str, dt.datetime], max_lookups: int) -> dict[str, str] | None:
    """The open tasks in one paged listing when more unfinished files than `max_lookups` would each need a GET."""
    unfinished = 0
    for blob in inputs:
        record = records.get(blob.name)
        if record is None or record.etag != naming.clean_etag(blob.etag) or record.state != RecordState.SUBMITTED:
            continue
        try:
            landed = outputs.get(naming.output_name(blob.name))
        except naming.UnmappableName:
            landed = None
        if not mp3_landed(landed, blob.last_modified):
            unfinished += 1
    return _open_tasks(deps) if unfinished > max_lookups else None


def pool_problems(monitor: MonitorState) -> list[str]:
    """What the monitor last saw wrong with the pool: Batch's resize errors and the last broken node."""
    problems = [f"resize error {line}" for line in monitor.resize_errors]
    node = monitor.node_failure
    if node and monitor.broken_now:
        tail = node.stderr_tail.strip().splitlines()[-1:] or [""]
        problems.append(f"node {node.id} {node.state} (exit code {node.exit_code}): "
                        f"{node.failure or '-'}" + (f"; stderr: {tail[0]}" if tail[0] else ""))
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
