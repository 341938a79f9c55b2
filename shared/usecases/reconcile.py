"""Reconcile: submit input blobs that never got a task (a missed trigger, files older than the app, a submit that
failed after its record was written, a task Batch no longer has)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from shared.domain import naming
from shared.domain.records import FileRecord, RecordState, mp3_landed
from shared.events import event
from shared.ports.deps import Deps
from shared.usecases.records import Records
from shared.usecases.submit import submit_blob

STATE_BLOB = "reconcile/state.json"


@dataclass(frozen=True)
class ReconcileResult:
    checked: int
    submitted: int
    wrapped: bool  # True when this run reached the end of the container (the next starts over)


def reconcile(deps: Deps, budget: int) -> ReconcileResult:
    """Look at up to `budget` input blobs, continuing where the last run stopped; submit versions with no record."""
    s = deps.settings
    state = deps.storage.get_json(s.state_container, STATE_BLOB) or {}
    page, marker = deps.storage.list_page(s.input_container, budget, state.get("marker"))
    records = Records(deps.storage, s.state_container, deps.clock)
    checked = submitted = 0
    for blob in page:
        if not naming.is_mp4(blob.name):
            continue
        checked += 1
        record, _ = records.get(blob.name)
        if record is not None and record.etag == naming.clean_etag(blob.etag):
            why = lost_task(deps, record, blob.last_modified)
            if not why:
                continue
            event("resubmit", logging.WARNING, name=blob.name, etag=record.etag, task_id=record.task_id, why=why)
        result = submit_blob(deps.storage.blob(s.input_container, blob.name), deps)
        if result.status in ("submitted", "rejected"):
            submitted += 1
    deps.storage.put_json(s.state_container, STATE_BLOB, {"marker": marker})
    event("reconcile", checked=checked, submitted=submitted, wrapped=marker is None)
    return ReconcileResult(checked, submitted, marker is None)


def lost_task(deps: Deps, record: FileRecord, input_modified: dt.datetime) -> str:
    """Why this recorded version must be submitted again ("" when it need not): its submit failed, or its record
    says submitted while Batch has no such task and no MP3 landed (the task was never added, or was lost)."""
    if record.state == RecordState.UNSUBMITTED:
        return f"the submit failed: {record.reason}" if record.reason else "the submit failed"
    if record.state != RecordState.SUBMITTED or not record.task_id:
        return ""
    try:
        output = naming.output_name(record.name)
    except naming.UnmappableName:
        return ""
    if mp3_landed(deps.storage.last_modified_of(deps.settings.output_container, output), input_modified):
        return ""  # converted (its task may since have been deleted)
    if deps.gateway.task_status(record.task_id) is not None:
        return ""
    return "recorded as submitted, but Batch has no such task"


def backfill(deps: Deps, budget: int = 1000) -> ReconcileResult:
    """One full pass over the input container from the start (the one-off `backfill` command)."""
    deps.storage.put_json(deps.settings.state_container, STATE_BLOB, {"marker": None})
    checked = submitted = 0
    while True:
        r = reconcile(deps, budget)
        checked, submitted = checked + r.checked, submitted + r.submitted
        if r.wrapped:
            return ReconcileResult(checked, submitted, True)
