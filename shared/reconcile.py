"""Reconcile: find input blobs that never got a task (a missed trigger, files older than the app) and submit them."""

from __future__ import annotations

from dataclasses import dataclass

from shared import naming
from shared.events import event
from shared.pipeline import Deps, submit_blob
from shared.records import Records

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
    container = deps.storage.service.get_container_client(s.input_container)
    pages = container.list_blobs(results_per_page=budget).by_page(continuation_token=state.get("marker"))
    records = Records(deps.storage, s.state_container)
    checked = submitted = 0
    page = next(pages, [])
    for blob in page:
        if not naming.is_mp4(blob.name):
            continue
        checked += 1
        record, _ = records.get(blob.name)
        if record is not None and record.etag == naming.clean_etag(blob.etag):
            continue
        result = submit_blob(container.get_blob_client(blob.name), deps)
        if result.status in ("submitted", "rejected"):
            submitted += 1
    marker = pages.continuation_token
    deps.storage.put_json(s.state_container, STATE_BLOB, {"marker": marker})
    event("reconcile", checked=checked, submitted=submitted, wrapped=marker is None)
    return ReconcileResult(checked, submitted, marker is None)


def backfill(deps: Deps, budget: int = 1000) -> ReconcileResult:
    """One full pass over the input container from the start (the one-off `backfill` command)."""
    deps.storage.put_json(deps.settings.state_container, STATE_BLOB, {"marker": None})
    checked = submitted = 0
    while True:
        r = reconcile(deps, budget)
        checked, submitted = checked + r.checked, submitted + r.submitted
        if r.wrapped:
            return ReconcileResult(checked, submitted, True)
