"""The use-cases: submit one blob version, run one monitor tick (scale, report failures)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared import cleanup, naming, planning, renewal, reports
from shared.batch.gateway import BatchGateway, FinishedTask, GatewayError, JobNotFound, PoolBusy, PoolSpec, PoolState
from shared.events import event
from shared.pool_health import note_resize_errors, remove_broken_nodes
from shared.records import MAX_RACE_RETRIES, FileRecord, Records
from shared.scaling import (
    Demand,
    PoolView,
    ResizeRetry,
    ScalingSettings,
    decide,
    learn_arrivals,
    observe,
    plan_after_resize_errors,
    typical_gap,
    work_seen,
)
from shared.settings import URL_GRACE_SECONDS, Settings
from shared.storage import Storage

MONITOR_STATE_BLOB = "monitor/state.json"


class BlobLike(Protocol):
    """What submit needs of the trigger's BlobClient: its name and properties (never its bytes)."""

    blob_name: str
    container_name: str

    def get_blob_properties(self, **kwargs: Any) -> Any: ...


@dataclass
class Deps:
    settings: Settings
    storage: Storage
    gateway: BatchGateway
    clock: Any = field(default=time.time)


@dataclass(frozen=True)
class SubmitResult:
    status: str  # "skipped" | "submitted" | "duplicate" | "superseded" | "rejected" | "gone"
    name: str
    task_id: str | None = None
    detail: str = ""


def pool_spec(settings: Settings) -> PoolSpec:
    return PoolSpec(
        id=settings.pool_id,
        slots_per_node=settings.slots_per_node,
        initial_dedicated_nodes=settings.min_nodes,
        metadata=(("app", "mp3pipe"), ("job", settings.job_id)),
    )


def ensure_job(deps: Deps) -> None:
    deps.gateway.ensure_pool(pool_spec(deps.settings))
    deps.gateway.ensure_job(deps.settings.pool_id)


def submit_blob(blob: BlobLike, deps: Deps) -> SubmitResult:
    """Plan and add one conversion task for this blob version; the same version twice makes one task."""
    started = time.perf_counter()
    name = blob.blob_name
    s = deps.settings
    if not naming.is_mp4(name):
        event("skipped", name=name, why="not an .mp4 name")
        return SubmitResult("skipped", name)
    try:
        props = blob.get_blob_properties()
    except Exception as exc:  # noqa: BLE001 - a blob deleted before we looked is not an error
        from azure.core.exceptions import ResourceNotFoundError

        if isinstance(exc, ResourceNotFoundError):
            event("gone", name=name, why="deleted before it was submitted")
            return SubmitResult("gone", name)
        raise
    etag = naming.clean_etag(props.etag)
    last_modified: dt.datetime = props.last_modified
    try:
        naming.check_mappable(name)
    except naming.UnmappableName as exc:
        report = write_report(
            deps, name, etag, task_id=None, exit_code=None, reason=f"name cannot be mapped safely: {exc}",
            stderr_tail="", attempts=0,
        )
        claim_newest(deps, name, etag, last_modified, None, blob, state="rejected", reason=str(exc), report=report)
        event("rejected", logging.WARNING, name=name, etag=etag, reason=str(exc), report=report)
        return SubmitResult("rejected", name, detail=str(exc))

    ttl = dt.timedelta(seconds=s.task_max_wall_clock_seconds + URL_GRACE_SECONDS)  # renewal.py counts on it
    if s.pool_identity_id:
        input_url = deps.storage.plain_blob_url(s.input_container, name)
        output_url = deps.storage.plain_container_url(s.output_container)
    else:
        input_url = deps.storage.node_read_url(s.input_container, name, ttl)
        output_url = deps.storage.node_write_container_url(s.output_container, ttl)
    task = planning.plan_task(
        name, etag, input_url=input_url, output_container_url=output_url, preset=s.ffmpeg_preset,
        max_retries=s.task_max_retries, max_wall_clock_seconds=s.task_max_wall_clock_seconds,
        retention_seconds=s.task_retention_seconds,
    )
    newest, previous = claim_newest(deps, name, etag, last_modified, task.id, blob)
    previous_task = previous.task_id if previous is not None and previous.etag != etag else None
    if not newest:
        event("superseded", name=name, etag=etag, why="a newer version of this blob exists")
        return SubmitResult("superseded", name, task.id)
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
        Records(deps.storage, s.state_container).mark(name, etag, state="unsubmitted", reason=str(exc))
        event("submit-failed", logging.ERROR, name=name, etag=etag, task_id=task.id, error=str(exc))
        raise
    if added and previous is not None:
        # A new version is on its way: a report about an older version no longer applies. A name never recorded
        # before has no report (every report is written beside its record), so a first drop saves the request.
        deps.storage.delete_if_exists(s.output_container, naming.report_name(name))
    status = "submitted" if added else "duplicate"
    event(status, name=name, etag=etag, task_id=task.id, ms=round((time.perf_counter() - started) * 1000, 1))
    return SubmitResult(status, name, task.id)


def claim_newest(
    deps: Deps, name: str, etag: str, last_modified: dt.datetime, task_id: str | None, blob: BlobLike,
    *, state: str = "submitted", reason: str = "", report: str = "",
) -> tuple[bool, FileRecord | None]:
    """Record this version as the name's newest, unless a newer one is recorded; returns (newest, the record found
    before, if any: this version's own after a re-trigger, else an older version's).

    Conditional writes make two versions racing (a file dropped twice in a second) agree on one winner.
    """
    records = Records(deps.storage, deps.settings.state_container)
    mine = FileRecord(name, etag, last_modified.isoformat(), task_id, state, "", reason, report)
    for _ in range(MAX_RACE_RETRIES):
        record, record_etag = records.get(name)
        if record is not None and record.etag == etag:
            if record.state == "unsubmitted" and state == "submitted":
                # Its earlier submit failed: this one is trying again.
                record.state, record.reason = state, ""
                if not records.put_if(record, record_etag):
                    continue
            return True, record  # this version is already recorded (a re-trigger or a reconcile)
        if record is not None and not _is_newer(deps, blob, mine, record):
            return False, record
        if records.put_if(mine, record_etag):
            return True, record
    raise RuntimeError(f"could not record the newest version of {name!r}: too many concurrent writers")


def _is_newer(deps: Deps, blob: BlobLike, mine: FileRecord, theirs: FileRecord) -> bool:
    ours, other = dt.datetime.fromisoformat(mine.last_modified), dt.datetime.fromisoformat(theirs.last_modified)
    if ours != other:
        return ours > other
    # Same second: the blob's current version decides.
    current = naming.clean_etag(blob.get_blob_properties().etag)
    return current == mine.etag


def write_report(
    deps: Deps, name: str, etag: str, *, task_id: str | None, exit_code: int | None, reason: str,
    stderr_tail: str, attempts: int, finished_at: dt.datetime | None = None, logs: str | None = None,
) -> str:
    report = reports.build_report(
        input_name=name, etag=etag, task_id=task_id, exit_code=exit_code, reason=reason,
        stderr_tail=stderr_tail, attempts=attempts, finished_at=finished_at or dt.datetime.now(dt.UTC), logs=logs,
    )
    path = naming.report_name(name)
    deps.storage.put_json(deps.settings.output_container, path, report)
    return path


@dataclass(frozen=True)
class TickResult:
    active: int
    running: int
    target_nodes: int
    resized: bool
    reason: str
    reported: tuple[str, ...]


def scaling_settings(s: Settings) -> ScalingSettings:
    return ScalingSettings(
        min_nodes=s.min_nodes, max_nodes=s.max_nodes, slots_per_node=s.slots_per_node, spot_share=s.spot_share,
        dedicated_floor=s.dedicated_floor, idle_grace_seconds=s.idle_grace_seconds,
    )


def monitor_tick(deps: Deps) -> TickResult:
    """Ensure pool and job, scale the pool to the work, turn newly failed tasks into failure reports, and delete
    tasks whose outcome is recorded. Batch requests on a steady run: pool, node counts, task counts."""
    s = deps.settings
    gw = deps.gateway
    now = deps.clock()
    state = deps.storage.get_json(s.state_container, MONITOR_STATE_BLOB) or {}
    as_read = json.dumps(state, sort_keys=True, default=str)

    pool = gw.pool_state()
    if pool is None:
        try:
            gw.ensure_pool(pool_spec(s))
        except GatewayError as exc:  # e.g. the pool is still being deleted: the next run creates it
            event("pool-not-created", logging.ERROR, error=str(exc))
        pool = gw.pool_state()
    try:
        counts = gw.task_counts()
    except JobNotFound:
        gw.ensure_job(s.pool_id)
        counts = gw.task_counts()

    demand = observe(counts.active, counts.running, counts.completed, state.get("completed"))
    last_work = work_seen(demand, now, state.get("last_work_seen"))
    known = counts.active + counts.running + counts.completed
    state["arrivals"] = learn_arrivals(state.get("arrivals", []), now, known - state.get("known", known))
    resized = False
    reason = "no pool"
    target = 0
    if pool is not None and pool.deleting:
        reason = "pool is being deleted; it is created again once it is gone"
    elif pool is not None:
        reason, target, resized = _scale(deps, pool, demand, now, last_work, state)

    # Failed tasks stay in the job until reported (then deleted), so no failed task counted means none to report;
    # a count that lags a failure by a run delays its report by a run (the watermark loses nothing).
    reported: list[str] = []
    if counts.failed > 0 or not state.get("failures_listed"):
        reported = report_failures(deps, state)
        state["failures_listed"] = True
    deleted = cleanup.delete_finished(deps, state, counts.completed, now)
    renewed = renewal.renew_old_urls(deps, state, counts.active, now)
    state["last_work_seen"] = last_work
    state["completed"] = max(counts.completed - deleted, 0)
    state["known"] = max(known - deleted, 0)
    if json.dumps(state, sort_keys=True, default=str) != as_read:  # an idle run changes nothing: no write
        deps.storage.put_json(s.state_container, MONITOR_STATE_BLOB, state)
    event(
        "monitor", active=counts.active, running=counts.running, completed=counts.completed,
        failed=counts.failed, target_nodes=target, resized=resized, reason=reason, reported=len(reported),
        deleted=deleted, renewed=renewed,
    )
    return TickResult(counts.active, counts.running, target, resized, reason, tuple(reported))


def _scale(deps: Deps, pool: PoolState, demand: Demand, now: float, last_work: float | None,
           state: dict[str, Any]) -> tuple[str, int, bool]:
    """One scaling step: broken nodes out, a blocking shrink stopped, resize errors retried, else resize."""
    gw = deps.gateway
    note_resize_errors(pool, state)
    if remove_broken_nodes(deps, pool, state):
        return f"{pool.broken} broken node(s) removed; resize next run", pool.target_dedicated + pool.target_spot, False
    settings = dataclasses.replace(scaling_settings(deps.settings), slots_per_node=pool.slots_per_node)
    current, target_now = pool.current_dedicated + pool.current_spot, pool.target_dedicated + pool.target_spot
    resend = False
    if pool.allocation_state == "steady" and not pool.auto_scale:
        plan = plan_after_resize_errors(tuple(e.code for e in pool.resize_errors), current, target_now, now,
                                        ResizeRetry(**state.get("resize_retry", {})))
        state["resize_retry"] = dataclasses.asdict(plan.retry)
        resend = plan.resend
        if plan.cap is not None:
            settings = dataclasses.replace(settings, max_nodes=max(plan.cap, 0), min_nodes=min(settings.min_nodes,
                                                                                              plan.cap))
    arrivals = state.get("arrivals", [])
    decision = decide(
        demand,
        PoolView(pool.allocation_state, pool.current_dedicated, pool.current_spot, pool.target_dedicated,
                 pool.target_spot, pool.preempted, pool.auto_scale),
        settings, now, last_work, typical_gap(arrivals), arrivals[-1] if arrivals else None,
    )
    reason, target = decision.reason, decision.dedicated + decision.spot
    try:
        if decision.stop_resize:
            gw.stop_resize()
            event("pool-resize-stopped", reason=decision.reason)
        elif decision.resize or resend:
            if resend:
                reason += f" (resize retried after: {'; '.join(e.code for e in pool.resize_errors)})"
            gw.resize(decision.dedicated, decision.spot)
            return reason, target, True
    except PoolBusy as exc:
        reason += f" (resize deferred: {exc})"
    return reason, target, False


def report_failures(deps: Deps, state: dict[str, Any]) -> list[str]:
    """Reports for failed tasks since the watermark; ids at the watermark are remembered, so none twice."""
    since_raw = state.get("failed_since")
    since = dt.datetime.fromisoformat(since_raw) if since_raw else None
    seen_at_since = set(state.get("seen_at_since", []))
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
        state["failed_since"] = since.isoformat()
        state["seen_at_since"] = sorted(seen_at_since)
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
    Records(deps.storage, s.state_container).mark(name, etag, state="failed", reason=reason, report=path)
    event("failed", logging.WARNING, name=name, etag=etag, task_id=task.id, exit_code=task.exit_code,
          reason=reason, report=path, attempts=task.attempts)
    return path


def retry(deps: Deps, name: str) -> SubmitResult:
    """Convert one file again: stamp the input blob (a new version, a new task id) and submit it now.

    Setting metadata gives the blob a new ETag without copying its bytes; submitting directly does not wait for
    a trigger (Event Grid raises no BlobCreated for a metadata change).
    """
    blob = deps.storage.service.get_blob_client(deps.settings.input_container, name)
    metadata = dict(blob.get_blob_properties().metadata or {})
    metadata["mp3pipe_retry"] = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    blob.set_blob_metadata(metadata)
    event("retry", name=name)
    return submit_blob(blob, deps)
