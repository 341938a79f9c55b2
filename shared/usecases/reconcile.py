"""Reconcile: submit input blobs that never got a task (a missed trigger, files older than the app, a submit that
failed after its record was written, a task Batch no longer has).

Each run lists the input container from a saved marker and the output container beside it, 5,000 names a page:
an input whose MP3 landed after it is done with no request of its own; only the others need their record (a GET)
and, when recorded as submitted, a look at Batch. A run looks at enough inputs for a whole pass of the container in
PASS_SECONDS (the container's size comes from the previous pass), at least `budget`, until its deadline (half the
function timeout, checked before each blob; progress saved after each page and where it stopped); a finished
pass's tallies (inputs, converted, failed, unconverted) stay in the state blob for `status`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from shared.domain import file_life, naming
from shared.domain.file_life import FileRecord, FileState
from shared.events import event
from shared.ports.deps import Deps
from shared.ports.storage import BlobInfo, Storage
from shared.run_deadline import Deadline
from shared.usecases.file_records import FileRecords
from shared.usecases.submit import submit_blob

STATE_BLOB = "reconcile/state.json"
PAGE_SIZE = 5000  # List Blobs' largest page
PASS_SECONDS = 7200.0  # a whole pass of the input container every 2 h, whatever its size


@dataclass(frozen=True)
class ReconcileResult:
    checked: int
    submitted: int
    wrapped: bool  # True when this run reached the end of the container (the next starts over)
    record_reads: int = 0  # inputs that needed their record: those with no MP3 yet
    stopped: bool = False  # True when the run's deadline came before its share was looked at


@dataclass
class PassTally:
    """What a pass has seen so far (kept in the state blob; the last finished pass's is what `status` shows)."""

    blobs: int = 0  # every blob listed, an input or not: the container's size for the next pass's sizing
    inputs: int = 0
    converted: int = 0
    failed: int = 0
    unconverted: int = 0  # inputs with neither an MP3 nor a failure: waiting, queued, converting, or lost

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> PassTally:
        d = d or {}
        return cls(**{k: int(d.get(k, 0)) for k in ("blobs", "inputs", "converted", "failed", "unconverted")})

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class OutputWindow:
    """The output container's MP3s, listed in step with the inputs (MP3 names sort like their inputs' names)."""

    storage: Storage
    container: str
    marker: str | None  # where the page being read began: the next run reads that page again
    next_marker: str | None = None
    ended: bool = False
    last: str = ""
    landed: dict[str, dt.datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.next_marker = self.marker

    def reach(self, name: str) -> None:
        """Read pages until the listing passed `name` (or ended)."""
        while not self.ended and self.last < name:
            page, nxt = self.storage.list_page(self.container, PAGE_SIZE, self.next_marker)
            self.marker, self.next_marker = self.next_marker, nxt
            self.ended = nxt is None
            for b in page:
                if b.name.lower().endswith(".mp3") and not b.name.startswith(f"{naming.LOGS_FOLDER}/"):
                    self.landed[b.name] = b.last_modified
            if page:
                self.last = max(self.last, page[-1].name)

    def forget_before(self, name: str) -> None:
        self.landed = {k: v for k, v in self.landed.items() if k >= name}


def run_size(budget: int, last_pass_blobs: int, since_last_run: float | None, previous_run: int) -> int:
    """Inputs a run looks at: its share of a pass of PASS_SECONDS over the container as the last pass counted it,
    at least `budget`; until a pass has finished, twice what the previous run looked at (so a first pass over a
    large container ends within a few runs, each bounded by its deadline)."""
    if last_pass_blobs <= 0:
        return max(budget, 2 * previous_run)
    if since_last_run is None:
        return budget
    share = min(max(since_last_run, 0.0), PASS_SECONDS) / PASS_SECONDS
    return max(budget, math.ceil(last_pass_blobs * share))


def reconcile(deps: Deps, budget: int, deadline: Deadline | None = None) -> ReconcileResult:
    """Look at this run's share of the input blobs, continuing where the last run stopped; submit versions with
    no record, or whose recorded task was lost; inputs whose MP3 landed cost no request of their own.

    The run stops at its deadline (half the function timeout), checked before each blob, and its progress is saved
    after each page and where it stopped (the page's marker and the last name done), so a run never repeats the
    work of the one before, however slow the listing or the submits."""
    s = deps.settings
    deadline = deadline or Deadline.start(deps.clock)
    now = deps.clock()
    state = deps.storage.get_json(s.state_container, STATE_BLOB) or {}
    tally = PassTally.from_json(state.get("tally"))
    ran_at = state.get("ran_at")
    want = run_size(budget, int(state.get("pass_blobs", 0)), None if ran_at is None else now - float(ran_at),
                    int(state.get("looked", 0)))
    marker: str | None = state.get("marker")
    done_through: str = state.get("done_through") or ""  # names up to this one, in the page at `marker`, are done
    outputs = OutputWindow(deps.storage, s.output_container, state.get("out_marker") if marker else None)
    records = FileRecords.of(deps)
    checked = submitted = reads = looked = 0
    wrapped = stopped = False

    def save() -> None:
        new_state: dict[str, Any] = {
            "marker": marker, "done_through": done_through or None, "out_marker": outputs.marker if marker else None,
            "ran_at": now, "looked": looked, "pass_blobs": int(state.get("pass_blobs", 0)),
            "last_pass": state.get("last_pass"), "tally": tally.to_json()}
        if wrapped:
            new_state["pass_blobs"] = tally.blobs
            new_state["last_pass"] = {**tally.to_json(),
                                      "finished_at": dt.datetime.fromtimestamp(now, dt.UTC).isoformat()}
            new_state["tally"] = PassTally().to_json()
        deps.storage.put_json(s.state_container, STATE_BLOB, new_state)

    while looked < want and not stopped and not wrapped:
        if deadline.passed():
            stopped = True
            break
        page, next_marker = deps.storage.list_page(s.input_container, min(PAGE_SIZE, want - looked), marker)
        page = [b for b in page if b.name > done_through]  # a page the last run stopped in: the rest of it
        mapped = [naming.mapped_output(b.name) if naming.is_input(b.name) else None for b in page]
        wanted = [m for m in mapped if m]
        if wanted:
            outputs.reach(max(wanted))
        for blob, output in zip(page, mapped, strict=True):
            if deadline.passed():
                stopped = True
                break
            looked += 1
            tally.blobs += 1
            done_through = blob.name
            if not naming.is_input(blob.name):
                continue
            checked += 1
            tally.inputs += 1
            if output and file_life.mp3_landed(outputs.landed.get(output), blob.last_modified):
                tally.converted += 1
                continue
            reads += 1
            record, _ = records.get(blob.name)
            submitted += _check(deps, blob, record, tally)
        if wanted:
            outputs.forget_before(min(wanted))
        if not stopped:  # the page is done: the next one starts at its marker
            marker, done_through = next_marker, ""
            wrapped = marker is None
            if not wrapped and looked < want:
                save()  # progress kept per page: a run the host abandons still leaves it
    save()
    event("reconcile", checked=checked, submitted=submitted, wrapped=wrapped, record_reads=reads, listed=looked,
          stopped_at_deadline=stopped)
    return ReconcileResult(checked, submitted, wrapped, reads, stopped)


def _check(deps: Deps, blob: BlobInfo, record: FileRecord | None, tally: PassTally) -> int:
    """An input with no MP3 yet: submit it when file_life says it waits for a submit (never recorded, its submit
    failed, or Batch lost its task); not when this version failed or is on its way."""
    stands = file_life.standing(record, naming.clean_etag(blob.etag), blob.last_modified, Looked(deps, blob.name))
    if stands.state == FileState.FAILED:
        tally.failed += 1
        return 0
    tally.unconverted += 1
    if not stands.resubmit:
        return 0
    if stands.reason and record is not None:
        event("resubmit", logging.WARNING, name=blob.name, etag=record.etag, task_id=record.task_id, why=stands.reason)
    result = submit_blob(deps.storage.blob(deps.settings.input_container, blob.name), deps)
    return int(result.status in ("submitted", "rejected"))


@dataclass(frozen=True)
class Looked:
    """What reconcile knows of an input with no MP3 in the listing: a fresh look at its MP3 (asked only before
    calling a task lost) and at its task."""

    deps: Deps
    name: str

    def output_modified(self, *, recheck: bool = False) -> dt.datetime | None:
        if not recheck:
            return None  # the listing just showed no MP3 newer than the input
        output = naming.mapped_output(self.name)
        if output is None:
            return None
        return self.deps.storage.last_modified_of(self.deps.settings.output_container, output)

    def task_state(self, task_id: str) -> str | None:
        return self.deps.gateway.task_status(task_id)

    def report(self) -> dict[str, Any] | None:
        return None  # reconcile needs no reason: a failed version is not submitted again


def last_pass(deps: Deps) -> dict[str, Any] | None:
    """The tallies of the last finished pass (inputs, converted, failed, unconverted, finished_at), if any."""
    state = deps.storage.get_json(deps.settings.state_container, STATE_BLOB) or {}
    return state.get("last_pass")


def backfill(deps: Deps, budget: int = 1000) -> ReconcileResult:
    """One full pass over the input container from the start (the one-off `backfill` command)."""
    state = deps.storage.get_json(deps.settings.state_container, STATE_BLOB) or {}
    deps.storage.put_json(deps.settings.state_container, STATE_BLOB,
                          {**state, "marker": None, "out_marker": None, "tally": None, "ran_at": None, "looked": 0})
    checked = submitted = reads = 0
    while True:
        r = reconcile(deps, budget)
        checked, submitted, reads = checked + r.checked, submitted + r.submitted, reads + r.record_reads
        if r.wrapped:
            return ReconcileResult(checked, submitted, True, reads)
