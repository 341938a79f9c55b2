"""A file's life in one place: its record, the states a version goes through, the transitions, where a file stands."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

PREFIX = "files/"

# What status shows for a version whose record says it was submitted but Batch has no task for it, and for one
# whose submit failed: reconcile submits both again.
NO_TASK = "Batch has no task for it; reconcile submits it again"
SUBMIT_FAILED = "its submit failed; reconcile submits it again ({error})"
NO_REPORT_YET = "failed (report not written yet)"


class RecordState(StrEnum):
    """What the record says of the name's newest version (str-valued: stored records keep the plain strings).

    submitted -> converted | failed (the monitor, from the task's outcome); submitted -> unsubmitted (the add
    failed) -> submitted (reconcile tries again); rejected (its name cannot be mapped to an output name) is final
    for that version. A newer version of the name replaces the record: the older one is then superseded, which is
    decided (`claim` at submit, `superseded` for a failed task) but never stored: the one record per name holds
    the newest version.
    """

    SUBMITTED = "submitted"
    UNSUBMITTED = "unsubmitted"  # its add failed: reconcile submits it again
    CONVERTED = "converted"  # its task succeeded: the MP3 is `output`
    FAILED = "failed"  # its task failed: `reason`, and the report at `report`
    REJECTED = "rejected"  # its name cannot be mapped to an output name: `reason`, and the report at `report`
    SUPERSEDED = "superseded"  # a newer version of the name won (decided, never stored)


class FileState(StrEnum):
    """Where one input file stands, as `mp3pipe status` shows it."""

    WAITING = "waiting"  # not submitted yet (trigger pending, or missed: reconcile or backfill submits it)
    QUEUED = "queued"
    CONVERTING = "converting"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class FileRecord:
    """What the pipeline knows of one input name: its newest version and where that version stands. Frozen: only
    the transitions below make a changed record."""

    name: str
    etag: str
    last_modified: str  # the input version's Last-Modified (ISO 8601)
    task_id: str | None
    state: RecordState
    updated_at: str = ""
    reason: str = ""
    report: str = ""
    output: str = ""  # the MP3, once converted

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", RecordState(self.state))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileRecord:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in fields})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def record_path(name: str) -> str:
    return f"{PREFIX}{hashlib.sha256(name.encode()).hexdigest()}.json"


def summary_metadata(record: FileRecord) -> dict[str, str]:
    """The record's headline as blob metadata (ASCII): a listing of the records then answers per-file state."""
    return {
        "name": base64.urlsafe_b64encode(record.name.encode()).decode(),
        "etag": record.etag,
        "state": record.state.value,
        "task": record.task_id or "",
        "lastmodified": record.last_modified,
        "updated": record.updated_at,
    }


def record_from_metadata(meta: dict[str, str]) -> FileRecord | None:
    try:
        name = base64.urlsafe_b64decode(meta["name"]).decode()
        return FileRecord(name, meta["etag"], meta.get("lastmodified", ""), meta.get("task") or None,
                          RecordState(meta["state"]), meta.get("updated", ""))
    except (KeyError, ValueError):
        return None


# -- transitions: each makes the changed record, or returns None when it does not apply (nothing to write) ----------


def submitted(name: str, etag: str, last_modified: dt.datetime, task_id: str) -> FileRecord:
    """A version whose task is being added."""
    return FileRecord(name, etag, last_modified.isoformat(), task_id, RecordState.SUBMITTED)


def rejected(name: str, etag: str, last_modified: dt.datetime, reason: str, report: str) -> FileRecord:
    """A version whose name cannot be mapped to an output name (its report is written)."""
    return FileRecord(name, etag, last_modified.isoformat(), None, RecordState.REJECTED, reason=reason, report=report)


def submit_failed(record: FileRecord, error: str) -> FileRecord | None:
    """Adding the task failed: reconcile submits the version again."""
    if record.state != RecordState.SUBMITTED:
        return None
    return dataclasses.replace(record, state=RecordState.UNSUBMITTED, reason=error)


def submitted_again(record: FileRecord) -> FileRecord | None:
    """Its earlier submit failed and this one is trying again."""
    if record.state != RecordState.UNSUBMITTED:
        return None
    return dataclasses.replace(record, state=RecordState.SUBMITTED, reason="")


def converted(record: FileRecord, output: str) -> FileRecord | None:
    """Its task succeeded: the MP3 `output` landed (Batch uploads it before the task completes)."""
    if record.state not in (RecordState.SUBMITTED, RecordState.UNSUBMITTED):
        return None
    return dataclasses.replace(record, state=RecordState.CONVERTED, output=output, reason="")


def failed(record: FileRecord, reason: str, report: str) -> FileRecord | None:
    """Its task failed: the report at `report` says why."""
    if record.state not in (RecordState.SUBMITTED, RecordState.UNSUBMITTED):
        return None
    return dataclasses.replace(record, state=RecordState.FAILED, reason=reason, report=report)


def lost_to_rival(record: FileRecord, reason: str, report: str) -> FileRecord | None:
    """Another input maps to the same MP3 and comes first (naming.precedence): this version is rejected."""
    if record.state == RecordState.REJECTED:
        return None
    return dataclasses.replace(record, state=RecordState.REJECTED, reason=reason, report=report)


def stamped(record: FileRecord, at: dt.datetime) -> FileRecord:
    """The record as written at `at`."""
    return dataclasses.replace(record, updated_at=at.isoformat())


def claim(mine: FileRecord, found: FileRecord | None,
          current_etag: Callable[[], str | None]) -> tuple[RecordState, FileRecord | None]:
    """How a version being submitted (or rejected) claims its name against the record `found`: the state it is in
    (submitted or rejected when it is the name's newest, else superseded), and the record to write (None: none).
    Which is newer: the later Last-Modified, or in the same second, the version the blob holds now (`current_etag`).

    The same version already recorded keeps its record (a re-trigger or a reconcile), unless its submit failed.
    """
    if found is not None and found.etag == mine.etag:
        again = submitted_again(found) if mine.state == RecordState.SUBMITTED else None
        return mine.state, again
    if found is not None and not is_newer(mine, found, current_etag):
        return RecordState.SUPERSEDED, None
    return mine.state, mine


def is_newer(mine: FileRecord, theirs: FileRecord, current_etag: Callable[[], str | None]) -> bool:
    """Whether `mine` is a newer version than `theirs`: a later Last-Modified, or in the same second, the version
    the blob holds now (`current_etag`)."""
    ours, other = dt.datetime.fromisoformat(mine.last_modified), dt.datetime.fromisoformat(theirs.last_modified)
    if ours != other:
        return ours > other
    return current_etag() == mine.etag


def superseded(etag: str, current_etag: str | None) -> bool:
    """The input blob now holds another version than `etag` (a deleted blob, None, supersedes nothing)."""
    return current_etag is not None and current_etag != etag


# -- where a file stands --------------------------------------------------------------------------------------------


def mp3_landed(output_modified: dt.datetime | None, input_modified: dt.datetime) -> bool:
    """An MP3 exists, written no earlier than the input version: what says "converted" without a record saying so
    (records written before the monitor recorded successes, and inputs never recorded)."""
    return output_modified is not None and output_modified >= input_modified


class Evidence(Protocol):
    """What `standing` may look at beyond the record, each read only when the answer needs it."""

    def output_modified(self, *, recheck: bool = False) -> dt.datetime | None:
        """The MP3's Last-Modified (None: no MP3); `recheck`: look again now (not at a listing made earlier)."""

    def task_state(self, task_id: str) -> str | None:
        """The task's state ("active", "running", "completed"), None when Batch has no such task."""

    def report(self) -> dict[str, Any] | None:
        """The failure report, None when there is none."""


@dataclass(frozen=True)
class Standing:
    """Where one input file stands: the state status shows, its reason, and whether reconcile submits it (again)."""

    state: FileState
    reason: str = ""
    finished_at: dt.datetime | None = None
    resubmit: bool = False


def standing(record: FileRecord | None, etag: str, input_modified: dt.datetime, evidence: Evidence) -> Standing:
    """Where the input version `etag` (Last-Modified `input_modified`) stands, from its record and the evidence."""
    mine = record if record is not None and record.etag == etag else None  # another version's record: not ours
    if mine is not None and mine.state in (RecordState.FAILED, RecordState.REJECTED):
        report = evidence.report() or {}
        finished = report.get("finished_at")
        return Standing(FileState.FAILED, report.get("reason", NO_REPORT_YET),
                        dt.datetime.fromisoformat(finished) if finished else None)
    landed = evidence.output_modified()
    if mine is not None and mine.state == RecordState.CONVERTED and landed is not None:
        return Standing(FileState.DONE, finished_at=landed)
    if mp3_landed(landed, input_modified):  # no record of this version, or one written before outcomes were
        return Standing(FileState.DONE, finished_at=landed)  # recorded: its MP3, newer than it, says converted
    if mine is None:  # not submitted yet: the trigger is on its way, or was missed
        return Standing(FileState.WAITING, resubmit=True)
    if mine.state == RecordState.UNSUBMITTED:
        return Standing(FileState.WAITING, SUBMIT_FAILED.format(error=mine.reason), resubmit=True)
    if not mine.task_id:
        return Standing(FileState.WAITING)
    landed = evidence.output_modified(recheck=True)  # before calling the task lost: its MP3 may have just landed
    if mp3_landed(landed, input_modified):
        return Standing(FileState.DONE, finished_at=landed)
    task = evidence.task_state(mine.task_id)
    if task is None:  # recorded, but Batch has no such task: not queued anywhere
        return Standing(FileState.WAITING, NO_TASK, resubmit=True)
    return Standing(FileState.CONVERTING if task in ("running", "completed") else FileState.QUEUED)


@dataclass(frozen=True)
class _Probe:
    """Evidence that answers from one known output time and notes whether Batch would be asked."""

    landed: dt.datetime | None
    asked: list[str]

    def output_modified(self, *, recheck: bool = False) -> dt.datetime | None:
        return self.landed

    def task_state(self, task_id: str) -> str | None:
        self.asked.append(task_id)
        return "active"

    def report(self) -> dict[str, Any] | None:
        return None


def asks_batch(record: FileRecord | None, etag: str, input_modified: dt.datetime,
               output_modified: dt.datetime | None) -> bool:
    """Whether `standing` needs Batch for this version (its record says submitted and no MP3 says otherwise)."""
    asked: list[str] = []
    standing(record, etag, input_modified, _Probe(output_modified, asked))
    return bool(asked)
