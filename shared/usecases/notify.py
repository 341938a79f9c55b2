"""Outcome events, at least once with a stable id: held in the state container's outbox before the outcome is
recorded, sent after, dropped once sent; each monitor run sends what a crash (or a down queue) left held."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from shared.domain import outcome_event
from shared.domain.file_life import RecordState
from shared.domain.outcome_event import Outcome
from shared.events import event as log_event
from shared.ports.deps import Deps
from shared.ports.outcome_queue import OutcomeQueueUnreachable
from shared.run_deadline import Deadline
from shared.usecases.file_records import FileRecords

OUTBOX = "outbox/"
# A held event younger than this may still be on its way (its outcome being recorded by another invocation):
# the monitor's resend leaves it to its writer, unless the writer marked it tried (the queue refused it).
RESEND_AFTER_SECONDS = 60
TRIED = "tried"  # outbox blob metadata: its writer tried to send it and the queue refused


def outbox_path(event: dict[str, Any]) -> str:
    return f"{OUTBOX}{event['id']}.json"


def rejected(deps: Deps, name: str, etag: str, reason: str, report: str, preset: str | None) -> Outcome:
    """The outcome of a version rejected without a task (its name, a rival input, its folder's settings), with the
    URL of its failure report."""
    return Outcome(name, etag, RecordState.REJECTED, None, preset, reason=reason,
                   report_url=deps.storage.plain_blob_url(deps.settings.output_container, report))


def decide(deps: Deps, outcome: Callable[[], Outcome], record: Callable[[], object] = lambda: None) -> None:
    """The version ended as `outcome()`: hold its event, `record` the outcome, then send the event if the name's
    record says it (outcome_event.due) and drop it from the outbox. Without an outcome queue, only `record`
    (and `outcome` is not called: its reads are for the event)."""
    if deps.outcomes is None:
        record()
        return
    s = deps.settings
    cloud = outcome_event.cloud_event(outcome(), deps.storage.plain_container_url(s.input_container), deps.now())
    deps.storage.put_json(s.state_container, outbox_path(cloud), cloud)
    record()
    _deliver(deps, cloud)


def _deliver(deps: Deps, cloud: dict[str, Any]) -> bool:
    """Send a held event if it is due, and drop it from the outbox; False when the queue could not take it."""
    assert deps.outcomes is not None
    s = deps.settings
    name, _, _ = outcome_event.outcome_of(cloud)
    found, _ = FileRecords.of(deps).get(name)
    if outcome_event.due(cloud, found):
        try:
            deps.outcomes.send(cloud)
        except OutcomeQueueUnreachable as exc:
            log_event("outcome-event-held", logging.WARNING, id=cloud["id"], name=name, error=str(exc))
            deps.storage.set_metadata(s.state_container, outbox_path(cloud), {TRIED: "1"})
            return False
        data = cloud["data"]
        log_event("outcome-event", id=cloud["id"], name=name, outcome=data["outcome"], task_id=data.get("task_id"),
                  bytes=(data.get("output") or {}).get("bytes"), reason=data.get("reason"))
    else:
        log_event("outcome-event-dropped", id=cloud["id"], name=name, why="its outcome was not recorded")
    deps.storage.delete_if_exists(s.state_container, outbox_path(cloud))
    return True


def resend_held(deps: Deps, deadline: Deadline | None = None) -> int:
    """Send every event held longer than RESEND_AFTER_SECONDS (a crash between outcome and send, or the queue
    down); stops at the first the queue refuses, and at the deadline. Returns the events delivered."""
    if deps.outcomes is None:
        return 0
    s = deps.settings
    oldest = deps.now() - dt.timedelta(seconds=RESEND_AFTER_SECONDS)
    sent = 0
    for blob in deps.storage.list_blobs(s.state_container, OUTBOX, metadata=True):
        if deadline is not None and deadline.passed():
            break
        if blob.last_modified > oldest and TRIED not in blob.metadata:
            continue
        cloud = deps.storage.get_json(s.state_container, blob.name)
        if cloud is None:  # delivered meanwhile
            continue
        if not _deliver(deps, cloud):
            break
        sent += 1
    return sent
