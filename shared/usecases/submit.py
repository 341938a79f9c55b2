"""Submit one blob version: plan its task, record it as the name's newest, add the task; and `retry` a file."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from shared.domain import file_life, naming, planning, task_slots
from shared.domain.file_life import RecordState
from shared.domain.folder_settings import BadFolderSettings
from shared.domain.outcome_event import Outcome
from shared.events import event
from shared.ports.batch import GatewayError, JobNotFound
from shared.ports.deps import Deps
from shared.ports.storage import BlobLike, Storage
from shared.settings import URL_GRACE_SECONDS, vcpus_of
from shared.usecases import notify
from shared.usecases.file_records import FileRecords
from shared.usecases.folder_settings import settings_for
from shared.usecases.job import ensure_job
from shared.usecases.report_writer import write_report
from shared.usecases.rivals import owner, reject_losers, rival_inputs, stem_listing, write_rival_report


@dataclass(frozen=True)
class SubmitResult:
    status: str  # "skipped" | "submitted" | "duplicate" | "superseded" | "rejected" | "gone"
    name: str
    task_id: str | None = None
    detail: str = ""


def submit_triggered(client: BlobLike, deps: Deps) -> SubmitResult:
    """The blob trigger's entry. The trigger's client only names the blob: the reads go through the app's own
    pooled client, so an invocation costs no new connection (on Azure no TLS handshake and no token per file)."""
    return submit_blob(deps.storage.blob(client.container_name, client.blob_name), deps)


def submit_blob(blob: BlobLike, deps: Deps, *, preset: str | None = None) -> SubmitResult:
    """Plan and add one conversion task for this blob version; the same version twice makes one task. `preset`:
    the one a renewed task was planned with (its folders' settings are read only when None)."""
    started = time.perf_counter()
    name = blob.blob_name
    s = deps.settings
    if not naming.is_input(name):
        event("skipped", name=name, why=f"not an input name ({', '.join(naming.INPUT_SUFFIXES)})")
        return SubmitResult("skipped", name)
    listing = stem_listing(deps, name)  # this blob and the inputs beside it that could map to its MP3
    props = next((b for b in listing if b.name == name), None)
    if props is None:  # a blob deleted before we looked is not an error
        event("gone", name=name, why="deleted before it was submitted")
        return SubmitResult("gone", name)
    etag = naming.clean_etag(props.etag)
    try:
        naming.check_mappable(name)
    except naming.UnmappableName as exc:
        report = write_report(
            deps, name, etag, task_id=None, exit_code=None, reason=f"name cannot be mapped safely: {exc}",
            stderr_tail="", attempts=0,
        )
        return _rejected(deps, blob, props.last_modified, etag, str(exc), report, s.ffmpeg_preset)
    try:
        preset = preset or settings_for(deps, name).preset  # its folders' _mp3pipe.json, else FFMPEG_PRESET
    except BadFolderSettings as exc:  # fails rather than converts with settings the folder did not ask for
        report = write_report(deps, name, etag, task_id=None, exit_code=None, reason=str(exc), stderr_tail="",
                              attempts=0)
        return _rejected(deps, blob, props.last_modified, etag, str(exc), report, None)
    rivals = rival_inputs(name, listing)
    winner = owner(name, rivals)
    if winner is not None:
        reason, report = write_rival_report(deps, name, etag, winner)
        return _rejected(deps, blob, props.last_modified, etag, reason, report, preset)

    ttl = dt.timedelta(seconds=s.task_max_wall_clock_seconds + URL_GRACE_SECONDS)  # renewal.py counts on it
    if s.pool_identity_id:
        input_url = deps.storage.plain_blob_url(s.input_container, name)
        output_url = deps.storage.plain_container_url(s.output_container)
    else:
        input_url = deps.storage.node_read_url(s.input_container, name, ttl)
        output_url = deps.storage.node_write_container_url(s.output_container, ttl)
    task = planning.plan_task(
        name, etag, input_url=input_url, output_container_url=output_url, preset=preset,
        max_retries=s.task_max_retries, max_wall_clock_seconds=s.task_max_wall_clock_seconds,
        retention_seconds=s.task_retention_seconds,
        required_slots=task_slots.required_slots(props.size, s.slots_per_node, vcpus_of(s.vm_size)),
    )
    state, previous = FileRecords.of(deps).claim(file_life.submitted(name, etag, props.last_modified, task.id),
                                                 lambda: current_etag(deps.storage, blob))
    previous_task = previous.task_id if previous is not None and previous.etag != etag else None
    if state == RecordState.SUPERSEDED:
        why = "a newer version of this blob exists"
        notify.decide(deps, lambda: Outcome(name, etag, RecordState.SUPERSEDED, task.id, preset, reason=why))
        event("superseded", name=name, etag=etag, why=why)
        return SubmitResult("superseded", name, task.id)
    reject_losers(deps, name, rivals)  # before this task is added: a loser's MP3 must not land after this one's
    if previous_task and previous_task != task.id:
        # The older version's conversion must not land after (and over) this one's.
        stopped = deps.gateway.terminate_task(previous_task)
        event("terminated-older", name=name, task_id=previous_task, stopped=stopped)
    try:
        try:
            added = deps.gateway.add_task(task)
        except JobNotFound:
            ensure_job(deps)
            added = deps.gateway.add_task(task)
    except GatewayError as exc:
        # Recorded first, added second: a failing add (403 while roles propagate, 409 JobCompleted, an outage)
        # must not leave the record saying "submitted". Reconcile submits an "unsubmitted" version again.
        error = str(exc)
        FileRecords.of(deps).apply(name, etag, lambda record: file_life.submit_failed(record, error))
        event("submit-failed", logging.ERROR, name=name, etag=etag, task_id=task.id, error=error)
        raise
    if added and previous is not None:
        # A new version is on its way: a report about an older version no longer applies. A name never recorded
        # before has no report (every report is written beside its record), so a first drop saves the request.
        deps.storage.delete_if_exists(s.output_container, naming.report_name(name))
    status = "submitted" if added else "duplicate"
    event(status, name=name, etag=etag, task_id=task.id, ms=round((time.perf_counter() - started) * 1000, 1))
    return SubmitResult(status, name, task.id)


def _rejected(deps: Deps, blob: BlobLike, last_modified: dt.datetime, etag: str, reason: str,
              report: str, preset: str | None) -> SubmitResult:
    """Record the version rejected without a task; `preset` is what it would have converted with (None: unknown,
    its folder's settings file being bad)."""
    name = blob.blob_name
    mine = file_life.rejected(name, etag, last_modified, reason, report)
    notify.decide(deps, lambda: notify.rejected(deps, name, etag, reason, report, preset),
                  lambda: FileRecords.of(deps).claim(mine, lambda: current_etag(deps.storage, blob)))
    event("rejected", logging.WARNING, name=name, etag=etag, reason=reason, report=report)
    return SubmitResult("rejected", name, detail=reason)


def current_etag(storage: Storage, blob: BlobLike) -> str | None:
    """The ETag of the version the blob holds now (None: deleted), which decides between two versions of a second."""
    current = storage.properties(blob)
    return naming.clean_etag(current.etag) if current is not None else None


def retry(deps: Deps, name: str) -> SubmitResult:
    """Convert one file again: stamp the input blob (a new version, a new task id) and submit it now.

    Setting metadata gives the blob a new ETag without copying its bytes; submitting directly does not wait for
    a trigger (Event Grid raises no BlobCreated for a metadata change). "gone" when there is no such input.
    """
    container = deps.settings.input_container
    blob = deps.storage.blob(container, name)
    props = deps.storage.properties(blob)
    if props is None:
        return SubmitResult("gone", name)
    stamp = deps.now().strftime("%Y%m%dT%H%M%S.%fZ")
    deps.storage.set_metadata(container, name, {**props.metadata, "mp3pipe_retry": stamp})
    event("retry", name=name)
    return submit_blob(blob, deps)
