"""`make serve`'s outcome lines: each outcome event the local host logs, as one line (converted, failed, ...)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localbatch.history import read_history
from shared.domain import naming

MARKER = '{"event": "outcome-event"'  # how shared.events logs it: one JSON object after the logger's name


def human_size(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


class OutcomeFeed:
    """Follows the host's log from where it ends now; `poll` says one line per outcome logged since."""

    def __init__(self, log_path: Path, batch_root: Path, job_id: str, say: Callable[[str], None]) -> None:
        self.log_path, self.batch_root, self.job_id, self.say = log_path, batch_root, job_id, say
        self.offset = log_path.stat().st_size if log_path.exists() else 0
        self.partial = b""

    def poll(self) -> None:
        try:
            with open(self.log_path, "rb") as fh:
                if fh.seek(0, 2) < self.offset:  # truncated: start over
                    self.offset, self.partial = 0, b""
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return
        self.offset += len(chunk)
        *lines, self.partial = (self.partial + chunk).split(b"\n")
        for raw in lines:
            text = raw.decode("utf-8", errors="replace")
            at = text.find(MARKER)
            if at < 0:
                continue
            try:
                record = json.loads(text[at:])
            except ValueError:
                continue
            self.say(self.words(record))

    def words(self, record: dict[str, Any]) -> str:
        """`converted a.mp4 -> a.mp3 (41.2 KB, 1.3 s)`, `failed b.mp4: reason`, `rejected c.mp4: reason`."""
        name, outcome = str(record.get("name")), str(record.get("outcome"))
        if outcome != "converted":
            return f"{outcome} {name}: {record.get('reason') or '-'}"
        output = naming.output_name(name)
        took = self.took(str(record.get("task_id") or ""))
        return f"converted {name} -> {output} ({human_size(record.get('bytes'))}{took})"

    def took(self, task_id: str) -> str:
        """`, 1.3 s`: from the task's first run to its last upload, by the local Batch's task history."""
        events = read_history(self.batch_root, self.job_id, task_id) if task_id else []
        runs = [e["at"] for e in events if e.get("event") == "run"]
        uploads = [e["at"] for e in events if e.get("event") == "upload"]
        return f", {uploads[-1] - runs[0]:.1f} s" if runs and uploads else ""
