"""Status for operators: per-file for the first page of inputs (joined with outputs and records), else a summary."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from shared.domain import file_life, folder_settings, naming
from shared.domain.file_life import FileRecord, FileState, RecordState
from shared.domain.monitor_state import MONITOR_STATE_BLOB, MonitorState
from shared.ports.batch import JobNotFound, PoolState
from shared.ports.deps import Deps
from shared.ports.storage import BlobInfo
from shared.usecases.file_records import FileRecords
from shared.usecases.reconcile import last_pass

STATES = tuple(FileState)
UNFINISHED = (FileState.WAITING, FileState.QUEUED, FileState.CONVERTING)
FILES_LIMIT = 5000  # per-file status for at most this many inputs (one listing page); past it, a summary
RECORD_GETS_MAX = 100  # up to this many inputs, their records are read one by one (no listing of every record)
RECORD_GET_THREADS = 8


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
    resubmit: bool = False  # reconcile or backfill would submit it (no task yet, its submit failed, task lost)


@dataclass
class StatusReport:
    files: list[FileStatus]
    pool: PoolState | None
    counts: Counter[str] = field(default_factory=Counter)
    pool_problems: list[str] = field(default_factory=list)  # resize errors, broken nodes (start task failures)
    complete: bool = True  # files holds every input (under the prefix); else the first `limit` and a summary
    summary: Summary | None = None  # counts for the whole container when `files` is only its first page
    skipped: list[str] = field(default_factory=list)  # blobs listed beside the inputs that are not inputs

    @property
    def busy(self) -> bool:
        return any(self.counts[s] for s in UNFINISHED)


@dataclass(frozen=True)
class Summary:
    """Whole-container counts without reading every file: reconcile's last pass and the job's task counts."""

    inputs: int | None  # None until reconcile has finished a pass
    converted: int | None
    failed: int | None
    unconverted: int | None
    pass_finished_at: str | None
    queued: int  # the job's active tasks
    converting: int  # the job's running tasks


def summary(deps: Deps) -> Summary:
    """Two reads: reconcile's state blob (the last pass's tallies) and the job's task counts."""
    tally = last_pass(deps) or {}
    try:
        counts = deps.gateway.task_counts()
        queued, running = counts.active, counts.running
    except JobNotFound:
        queued = running = 0
    return Summary(tally.get("inputs"), tally.get("converted"), tally.get("failed"), tally.get("unconverted"),
                   tally.get("finished_at"), queued, running)


def collect(deps: Deps, prefix: str = "", max_task_lookups: int = 200, limit: int = FILES_LIMIT) -> StatusReport:
    """Per-file status of the first `limit` inputs under `prefix` (name order), streamed from the listings: the
    outputs listed over the same names, the records of those inputs (one listing of all records for a small
    deployment, else a GET each), then one task lookup per unfinished file, or one paged listing of the open tasks
    when there are more than `max_task_lookups`. Past `limit` files the report carries a `summary` instead of
    complete counts."""
    s = deps.settings
    skipped: list[str] = []  # blobs the pipeline leaves alone (not an input, nor a folder's settings file)

    def inputs_only() -> Iterator[BlobInfo]:
        for b in deps.storage.list_blobs(s.input_container, prefix):
            if naming.is_input(b.name):
                yield b
            elif b.name.rsplit("/", 1)[-1] != folder_settings.FILE_NAME:
                skipped.append(b.name)

    inputs = list(itertools.islice(inputs_only(), limit + 1))
    complete = len(inputs) <= limit
    inputs = inputs[:limit]
    outputs = _outputs(deps, prefix, inputs, complete)
    records = _records(deps, inputs, complete and not prefix)
    open_tasks = _open_tasks_if_many(deps, inputs, records, outputs, max_task_lookups)
    tasks = TaskLookups(deps, open_tasks, max_task_lookups)
    files: list[FileStatus] = []
    for blob in inputs:
        output = naming.mapped_output(blob.name)
        record = records.get(blob.name)
        etag = naming.clean_etag(blob.etag)
        rejected = record is not None and record.etag == etag and record.state == RecordState.REJECTED
        evidence = Listed(deps, outputs.get(output or ""), tasks, report_paths(blob.name, rejected))
        stands = file_life.standing(record, etag, blob.last_modified, evidence)
        report = evidence.report_path
        files.append(FileStatus(
            blob.name, stands.state, blob.last_modified, report if stands.state == FileState.FAILED else output,
            stands.reason, stands.finished_at, record.task_id if record is not None and record.etag == etag else None,
            stands.resubmit))
    monitor = MonitorState.from_json(deps.storage.get_json(s.state_container, MONITOR_STATE_BLOB))
    report = StatusReport(files, deps.gateway.pool_state(), pool_problems=pool_problems(monitor), complete=complete,
                          summary=None if complete else summary(deps), skipped=skipped)
    report.counts.update(f.state for f in files)
    return report


def _outputs(deps: Deps, prefix: str, inputs: list[BlobInfo], complete: bool) -> dict[str, dt.datetime]:
    """Outputs under the prefix: all of them when `inputs` is complete, else only up to the last input's MP3."""
    listing = deps.storage.list_blobs(deps.settings.output_container, prefix)
    if not complete:
        last = max((m for m in (naming.mapped_output(b.name) for b in inputs) if m), default="")
        listing = itertools.takewhile(lambda b: b.name <= last, listing)
    return {b.name: b.last_modified for b in listing}


def _records(deps: Deps, inputs: list[BlobInfo], list_all: bool) -> dict[str, FileRecord]:
    """The inputs' records: one listing of every record when that is the whole deployment and more than a few
    files, else a GET each (a record's path is a hash of its name, so a prefix cannot narrow that listing)."""
    records = FileRecords.of(deps)
    if list_all and len(inputs) > RECORD_GETS_MAX:
        return records.list_all()
    with ThreadPoolExecutor(RECORD_GET_THREADS) as pool:
        found = pool.map(lambda b: records.get(b.name)[0], inputs)
        return {r.name: r for r in found if r is not None}


def _open_tasks(deps: Deps) -> dict[str, str]:
    try:
        return deps.gateway.open_tasks()
    except JobNotFound:
        return {}


def _open_tasks_if_many(deps: Deps, inputs: list[BlobInfo], records: dict[str, FileRecord],
                        outputs: dict[str, dt.datetime], max_lookups: int) -> dict[str, str] | None:
    """The open tasks in one paged listing when more unfinished files than `max_lookups` would each need a GET."""
    unfinished = sum(file_life.asks_batch(records.get(b.name), naming.clean_etag(b.etag), b.last_modified,
                                          outputs.get(naming.mapped_output(b.name) or "")) for b in inputs)
    return _open_tasks(deps) if unfinished > max_lookups else None


class TaskLookups:
    """Task states for status: from the open tasks' listing when there is one (a GET each for the tasks it lacks,
    up to `max_lookups`), else a GET each."""

    def __init__(self, deps: Deps, open_tasks: dict[str, str] | None, max_lookups: int) -> None:
        self.deps, self.open_tasks, self.max_lookups, self.lookups = deps, open_tasks, max_lookups, 0

    def state(self, task_id: str) -> str | None:
        if self.open_tasks is not None:  # many unfinished files: one paged listing instead of a GET each
            task = self.open_tasks.get(task_id)
            if task is not None or self.lookups >= self.max_lookups:  # else completed (converting) or missing
                return task
        self.lookups += 1
        return self.deps.gateway.task_status(task_id)


def report_paths(name: str, rejected: bool) -> tuple[str, ...]:
    """Where a version's report may be: beside its would-be MP3; a rejected version's first by its hash (an unmappable
    name, or a losing rival, whose MP3's place is another's), then beside (rejected for its folder's settings)."""
    beside = naming.report_name(name)
    return tuple(dict.fromkeys((naming.unmapped_report_name(name), beside))) if rejected else (beside,)


@dataclass
class Listed:
    """What status knows of one input beyond its record: its MP3 from the outputs' listing, its task, its report."""

    deps: Deps
    landed: dt.datetime | None
    tasks: TaskLookups
    report_paths: tuple[str, ...]  # where its report may be, in order (report_paths)
    report_path: str = ""  # where it was found (the first place until looked)

    def __post_init__(self) -> None:
        self.report_path = self.report_paths[0]

    def output_modified(self, *, recheck: bool = False) -> dt.datetime | None:
        return self.landed  # status lists the outputs just before: that listing is fresh enough

    def task_state(self, task_id: str) -> str | None:
        return self.tasks.state(task_id)

    def report(self) -> dict[str, Any] | None:
        for path in self.report_paths:
            found = self.deps.storage.get_json(self.deps.settings.output_container, path)
            if found is not None:
                self.report_path = path
                return found
        return None


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

    summary = report.summary
    return json.dumps({
        "counts": {state: report.counts[state] for state in STATES},
        "complete": report.complete,
        "skipped": report.skipped,
        "summary": None if summary is None else dataclasses.asdict(summary),
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
