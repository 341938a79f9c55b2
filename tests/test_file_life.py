"""A file's life in one place: only file_life makes or changes a record, and its one state function's answers."""

from __future__ import annotations

import ast
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest

from devhost.azurite import REPO
from shared.domain import file_life
from shared.domain.file_life import FileRecord, FileState, RecordState

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_only_file_life_makes_or_changes_a_record() -> None:
    """A newcomer asking why status says X finds every transition in one module: no other module builds a
    FileRecord, replaces its fields or sets them (the record is frozen, so setting one fails at once)."""
    wrong = []
    for path in sorted((REPO / "shared").rglob("*.py")) + sorted((REPO / "mp3pipe").rglob("*.py")):
        if path.name == "file_life.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            first = ast.unparse(node.args[0]).lower() if node.args else ""
            if called == "FileRecord" or called in ("replace", "setattr") and "record" in first:
                wrong.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert wrong == []
    with pytest.raises(AttributeError):
        file_life.submitted("a.mp4", "0x1", T0, "t").state = RecordState.FAILED  # type: ignore[misc]


@dataclass
class Seen:
    """Evidence with fixed answers, noting what was looked at."""

    landed: dt.datetime | None = None
    landed_on_recheck: dt.datetime | None = None
    task: str | None = None
    looked: list[str] = field(default_factory=list)

    def output_modified(self, *, recheck: bool = False) -> dt.datetime | None:
        self.looked.append("recheck" if recheck else "output")
        return self.landed_on_recheck if recheck else self.landed

    def task_state(self, task_id: str) -> str | None:
        self.looked.append("task")
        return self.task

    def report(self) -> dict[str, Any] | None:
        self.looked.append("report")
        return {"reason": "the input has no audio stream", "finished_at": T0.isoformat()}


def record(state: RecordState, etag: str = "0x1") -> FileRecord:
    return FileRecord("a.mp4", etag, T0.isoformat(), "task-1", state)


LATER = T0 + dt.timedelta(seconds=5)
EARLIER = T0 - dt.timedelta(seconds=5)


@pytest.mark.parametrize(("rec", "seen", "expected", "resubmit"), [
    # never recorded: waiting for its trigger (reconcile submits it), or done when an MP3 newer than it is there
    (None, Seen(), FileState.WAITING, True),
    (None, Seen(landed=LATER), FileState.DONE, False),
    # recorded converted: done, whatever the MP3's time; a record written before outcomes were recorded says
    # "submitted", and its MP3 written after the input says converted
    (record(RecordState.CONVERTED), Seen(landed=EARLIER), FileState.DONE, False),
    (record(RecordState.SUBMITTED), Seen(landed=LATER), FileState.DONE, False),
    # an MP3 older than the input is a previous version's: this one is on its way
    (record(RecordState.SUBMITTED), Seen(landed=EARLIER, task="active"), FileState.QUEUED, False),
    (record(RecordState.SUBMITTED), Seen(task="running"), FileState.CONVERTING, False),
    (record(RecordState.SUBMITTED), Seen(task=None), FileState.WAITING, True),  # Batch lost its task
    (record(RecordState.SUBMITTED), Seen(task=None, landed_on_recheck=LATER), FileState.DONE, False),
    (record(RecordState.UNSUBMITTED), Seen(), FileState.WAITING, True),
    (record(RecordState.FAILED), Seen(landed=LATER), FileState.FAILED, False),
    (record(RecordState.REJECTED), Seen(), FileState.FAILED, False),
    # the record is another version's (the newest version's trigger is on its way)
    (record(RecordState.FAILED, etag="0x0"), Seen(), FileState.WAITING, True),
], ids=["unrecorded", "unrecorded-landed", "converted", "legacy-submitted-landed", "older-mp3", "running",
        "task-lost", "landed-meanwhile", "unsubmitted", "failed", "rejected", "other-version"])
def test_where_a_file_stands(rec: FileRecord | None, seen: Seen, expected: FileState, resubmit: bool) -> None:
    stands = file_life.standing(rec, "0x1", T0, seen)
    assert (stands.state, stands.resubmit) == (expected, resubmit)
    if expected == FileState.FAILED:
        assert stands.reason == "the input has no audio stream" and stands.finished_at == T0


def test_the_reasons_status_shows_for_a_file_reconcile_submits_again() -> None:
    lost = file_life.standing(record(RecordState.SUBMITTED), "0x1", T0, Seen())
    assert lost.reason == "Batch has no task for it; reconcile submits it again"
    unsubmitted = file_life.submit_failed(record(RecordState.SUBMITTED), "403 AuthorizationFailure")
    assert unsubmitted is not None
    shown = file_life.standing(unsubmitted, "0x1", T0, Seen())
    assert shown.reason == "its submit failed; reconcile submits it again (403 AuthorizationFailure)"


def test_reconcile_asks_storage_and_batch_only_when_the_record_says_submitted() -> None:
    for rec in (None, record(RecordState.UNSUBMITTED), record(RecordState.FAILED)):
        seen = Seen()
        file_life.standing(rec, "0x1", T0, seen)
        assert "recheck" not in seen.looked and "task" not in seen.looked
    seen = Seen(task="active")
    file_life.standing(record(RecordState.SUBMITTED), "0x1", T0, seen)
    assert seen.looked == ["output", "recheck", "task"]  # the MP3 looked at again just before asking Batch
