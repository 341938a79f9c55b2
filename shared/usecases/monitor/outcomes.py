"""The outcome watcher: each task finished since the watermark becomes its file's recorded outcome, converted (with
its MP3) or failed (with a failure report beside where the MP3 would be)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from shared.domain import failure_report, file_life, naming, planning
from shared.domain.file_life import RecordState
from shared.domain.monitor_state import MonitorState
from shared.domain.outcome_event import Outcome
from shared.events import event
from shared.ports.batch import CompletedTask, FinishedTask
from shared.ports.deps import Deps
from shared.run_deadline import Deadline
from shared.usecases import notify
from shared.usecases.file_records import FileRecords
from shared.usecases.report_writer import write_report

OUTCOMES_PER_RUN = 2000  # finished tasks a run records at most (two listing pages); the next run goes on
RECORD_THREADS = 8  # outcomes recorded at once (each a record read and write, a failure also its report)


def record_outcomes(deps: Deps, state: MonitorState, deadline: Deadline | None = None) -> list[str]:
    """Record the outcome of every task finished since the watermark; ids at the watermark are remembered, so none
    twice. Returns the failure reports written.

    A run records at most OUTCOMES_PER_RUN (two listing pages, oldest first) and stops between rounds of
    RECORD_THREADS at the run's deadline: the watermark covers the outcomes recorded, and `state.outcomes_listed`
    stays false so the next run lists again from there (whatever the task counts say), until a backlog (a first
    run over a long history, a burst) is drained. Sets `state.outcomes_listed` once every outcome listed is
    recorded and the listing was not cut at OUTCOMES_PER_RUN.
    """
    since = state.outcomes_since
    finished = deps.gateway.finished_tasks_since(since, OUTCOMES_PER_RUN)
    capped = len(finished) >= OUTCOMES_PER_RUN
    seen_at_since = set(state.seen_at_since)
    new = [t for t in finished
           if not (t.id in seen_at_since and since is not None and t.state_transition_time <= since)]
    reported: list[str] = []
    done: list[FinishedTask] = []
    with ThreadPoolExecutor(RECORD_THREADS, thread_name_prefix="outcomes") as pool:
        for start in range(0, len(new), RECORD_THREADS):
            if deadline is not None and deadline.passed():
                event("outcomes-deferred", logging.WARNING, recorded=len(done), left=len(new) - len(done),
                      why="the run's deadline")
                break
            round_ = new[start:start + RECORD_THREADS]
            reported += [path for path in pool.map(lambda task: record_outcome(deps, task), round_) if path]
            done += round_
    state.outcomes_listed = not capped and len(done) == len(new)
    if capped:
        event("outcomes-behind", logging.WARNING, listed=len(finished), recorded=len(done),
              since=since.isoformat() if since else None)
    for task in done:
        if since is None or task.state_transition_time > since:
            since = task.state_transition_time
            seen_at_since = set()
        seen_at_since.add(task.id)
    if since is not None:
        state.outcomes_since = since
        state.seen_at_since = tuple(sorted(seen_at_since))
    return reported


def outcome_recorded(task: CompletedTask, state: MonitorState) -> bool:
    """A failed task's outcome is recorded once the watermark has passed it (its report is written, or it was
    superseded); a succeeded task's MP3 is its outcome, in storage before the task completes (Batch uploads it
    first), and the watcher records it within a run, long before the task retention lets it be deleted."""
    if task.succeeded:
        return True
    since = state.outcomes_since
    if since is None:
        return False
    return task.state_transition_time < since or (
        task.state_transition_time == since and task.id in state.seen_at_since
    )


def record_outcome(deps: Deps, task: FinishedTask) -> str | None:
    """Mark the task's version converted, or failed with a report; returns the report written, if any."""
    name = task.environment.get(planning.ENV_INPUT_BLOB)
    etag = task.environment.get(planning.ENV_INPUT_ETAG, "")
    if not name:
        if not task.succeeded:
            event("failed-task-unknown", logging.WARNING, task_id=task.id, reason=task.failure_message)
        return None
    if task.succeeded:
        output = naming.output_name(name)  # a task is planned only for a name that maps to an output
        records = FileRecords.of(deps)
        notify.decide(deps, lambda: converted_outcome(deps, task, name, etag, output),
                      lambda: records.apply(name, etag, lambda record: file_life.converted(record, output)))
        return None
    return report_failure(deps, task, name, etag)


def converted_outcome(deps: Deps, task: FinishedTask, name: str, etag: str, output: str) -> Outcome:
    """The converted event's content: the MP3's URL, size and preset (one properties read)."""
    s = deps.settings
    mp3 = deps.storage.properties(deps.storage.blob(s.output_container, output))
    stamped = mp3.metadata.get(planning.META_PRESET) if mp3 is not None else None
    preset = planning.decode(stamped) if stamped else preset_of(deps, task)
    return Outcome(name, etag, RecordState.CONVERTED, task.id, preset,
                   output_url=deps.storage.plain_blob_url(s.output_container, output),
                   output_bytes=mp3.size if mp3 is not None else None)


def preset_of(deps: Deps, task: FinishedTask) -> str:
    """The preset the task converted with (its folder's): in its environment; a task planned before the environment
    carried it used the app setting."""
    return task.environment.get(planning.ENV_PRESET) or deps.settings.ffmpeg_preset


def report_failure(deps: Deps, task: FinishedTask, name: str, etag: str) -> str | None:
    """Write the failure report of this version and mark it failed, unless a newer version of the input exists."""
    s = deps.settings
    current = deps.storage.etag_of(s.input_container, name)
    if file_life.superseded(etag, None if current is None else naming.clean_etag(current)):
        event("failed-superseded", name=name, etag=etag, task_id=task.id, current_etag=naming.clean_etag(current or ""))
        notify.decide(deps, lambda: Outcome(name, etag, RecordState.SUPERSEDED, task.id, preset_of(deps, task),
                                            reason="a newer version of this blob exists"))
        return None
    logs = naming.logs_folder(task.id)
    tail = deps.storage.read_tail(s.output_container, f"{logs}/stderr.txt") or ""
    reason = failure_report.reason_from(tail, task.failure_message, task.exit_code)
    if current is None:
        reason += " (the input has since been deleted)"
    path = write_report(
        deps, name, etag, task_id=task.id, exit_code=task.exit_code, reason=reason, stderr_tail=tail,
        attempts=task.attempts, finished_at=task.finished_at, logs=logs,
    )
    notify.decide(deps, lambda: Outcome(name, etag, RecordState.FAILED, task.id, preset_of(deps, task), reason=reason,
                                        report_url=deps.storage.plain_blob_url(s.output_container, path)),
                  lambda: FileRecords.of(deps).apply(name, etag, lambda record: file_life.failed(record, reason, path)))
    event("failed", logging.WARNING, name=name, etag=etag, task_id=task.id, exit_code=task.exit_code,
          reason=reason, report=path, attempts=task.attempts)
    return path
