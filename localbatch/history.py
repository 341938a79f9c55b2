"""Each local task's append-only history (`history/<job>/<task>.jsonl`): its runs, launches and uploads.

One event is one line, appended by a single write() and counted as recorded once its newline is written. A
reader fails loudly (HistoryError) on any line it cannot read, with one exception: a last line with no newline
is an append cut short (the disk filled, the machine lost power) and is not an event yet, so it is left out.
A kill -9 cannot tear a line: it never lands inside a single write() to a local file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class HistoryError(Exception):
    """A task's history has a line that is not a whole event: the audit cannot vouch for that task."""


def history_path(batch_root: Path, job_id: str, task_id: str) -> Path:
    return Path(batch_root) / "history" / job_id.lower() / f"{task_id.lower()}.jsonl"


def append_event(batch_root: Path, job_id: str, task_id: str, event: str, **fields: Any) -> None:
    """Append one event; kept across runs and restarts, so a task run or uploaded twice can be seen."""
    path = history_path(batch_root, job_id, task_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"event": event, "pid": os.getpid(), "at": round(time.time(), 6), **fields}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_history(batch_root: Path, job_id: str, task_id: str) -> list[dict[str, Any]]:
    """A task's events, oldest first: "run" (claimed), "exec" (its command launched), "uploading"/"upload"."""
    path = history_path(batch_root, job_id, task_id)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    *whole, _cut_short = data.split(b"\n")  # "" when the file ends with a newline, else an append cut short
    events = []
    for number, line in enumerate(whole, 1):
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict) or "event" not in event:
            raise HistoryError(f"{path}: line {number} is not a whole event: {line[:80]!r}")
        events.append(event)
    return events
