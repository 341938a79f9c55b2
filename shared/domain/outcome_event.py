"""The one outcome event per input version: a CloudEvents 1.0 structured-mode JSON object (pure)."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from shared.domain.file_life import FileRecord, RecordState

SPECVERSION = "1.0"
TYPE_PREFIX = "io.mp3pipe.file."  # + the outcome: io.mp3pipe.file.converted, ...
OUTCOMES = (RecordState.CONVERTED, RecordState.FAILED, RecordState.REJECTED, RecordState.SUPERSEDED)


@dataclass(frozen=True)
class Outcome:
    """How one input version ended, with what a receiver needs to act on it."""

    name: str
    etag: str
    outcome: RecordState  # one of OUTCOMES
    task_id: str | None  # None only for a rejected version (it never had a task)
    preset: str | None  # None: a version rejected for its folder's bad settings file (no preset applied)
    output_url: str = ""  # converted: the MP3
    output_bytes: int | None = None
    reason: str = ""  # failed, rejected, superseded: why
    report_url: str = ""  # failed, rejected: the failure report


def event_id(name: str, etag: str, task_id: str | None) -> str:
    """The receiver's dedupe key: the task id, else (a rejected version) one derived from name and ETag."""
    if task_id:
        return task_id
    return "rejected-" + hashlib.sha256(f"{name}\n{etag}".encode()).hexdigest()[:40]


def cloud_event(outcome: Outcome, source: str, at: dt.datetime) -> dict[str, Any]:
    """The CloudEvent for `outcome`; `source` names the input container (its URL), `at` when the outcome was
    decided. `subject` is the input's name; `data` repeats it beside its ETag (one version of the name)."""
    if outcome.outcome not in OUTCOMES:
        raise ValueError(f"not an outcome: {outcome.outcome}")
    data: dict[str, Any] = {
        "input": {"name": outcome.name, "etag": outcome.etag},
        "outcome": outcome.outcome.value,
        "preset": outcome.preset,
        "task_id": outcome.task_id,
    }
    if outcome.outcome == RecordState.CONVERTED:
        data["output"] = {"url": outcome.output_url, "bytes": outcome.output_bytes}
    else:
        data["reason"] = outcome.reason
        if outcome.report_url:
            data["report"] = outcome.report_url
    return {
        "specversion": SPECVERSION,
        "id": event_id(outcome.name, outcome.etag, outcome.task_id),
        "source": source,
        "type": TYPE_PREFIX + outcome.outcome.value,
        "subject": outcome.name,
        "time": at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": data,
    }


def outcome_of(event: dict[str, Any]) -> tuple[str, str, RecordState]:
    """The input name, ETag and outcome an event says."""
    data = event["data"]
    return data["input"]["name"], data["input"]["etag"], RecordState(data["outcome"])


def due(event: dict[str, Any], record: FileRecord | None) -> bool:
    """Whether the event tells the truth by the name's record: it does unless the record holds this very version
    in another state (its outcome was then never recorded, and whoever decides it makes the event again). A
    superseded version has no record of its own; another version's record, or none, leaves ours as it ended."""
    name, etag, outcome = outcome_of(event)
    if outcome == RecordState.SUPERSEDED or record is None or record.etag != etag:
        return True
    return record.state == outcome
