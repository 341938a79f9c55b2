"""What the local gateway did per task, read from its state folder: runs, command launches and uploads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.adapters.batch.local_history import read_history
from shared.adapters.batch.local_store import read_tasks
from shared.domain import planning


@dataclass
class TaskAudit:
    """One task's row in the local gateway's table and its append-only history."""

    id: str
    state: str
    result: str | None
    failure_message: str
    retry_count: int
    requeue_count: int
    owner_pid: int | None
    name: str  # the input blob
    etag: str  # the input version
    output: str | None  # where its MP3 is uploaded on success
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def terminated(self) -> bool:
        return self.state == "completed" and self.failure_message.startswith("TaskEnded")

    def runs(self) -> list[list[dict[str, Any]]]:
        """The history split into runs: each begins when a process claims the task."""
        runs: list[list[dict[str, Any]]] = []
        for event in self.history:
            if event["event"] == "run" or not runs:
                runs.append([])
            runs[-1].append(event)
        return runs

    def execs(self) -> int:
        return sum(1 for e in self.history if e["event"] == "exec")

    def mp3_uploads(self, run: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        events = self.history if run is None else run
        return [e for e in events if e["event"] == "upload" and e.get("path") == self.output]

    def problems(self) -> list[str]:
        """Work done twice or not accounted for; empty when each run, launch and upload happened once."""
        out: list[str] = []
        runs = self.runs()
        allowed = 1 + self.retry_count + self.requeue_count  # the first try, Batch retries, requeues after a crash
        if len(runs) > allowed:
            out.append(f"{len(runs)} runs, but only {allowed} accounted for by retries and requeues")
        for i, run in enumerate(runs):
            if sum(1 for e in run if e["event"] == "exec") > 1:
                out.append(f"run {i + 1} launched its command more than once")
            uploads = len(self.mp3_uploads(run))
            cut = i + 1 < len(runs) and runs[i + 1][0]["pid"] != run[0]["pid"]  # its process died, it ran again
            last_success = i == len(runs) - 1 and self.state == "completed" and self.result == "success"
            if uploads > 1 or (uploads and not (cut or last_success)):
                out.append(f"run {i + 1} uploaded the MP3 {uploads} time(s)")
            if last_success and uploads == 0:
                out.append("completed with success but its last run uploaded no MP3")
        return out


def audit(state_dir: Path, job_id: str) -> list[TaskAudit]:
    """Every task of the job in the local gateway under `state_dir`, with its history; [] before it exists."""
    root = Path(state_dir) / "batch"
    out = []
    for t in read_tasks(state_dir, job_id):
        env = t.spec.env()
        mp3 = next((o.path for o in t.spec.output_files if o.upload_condition.lower() == "tasksuccess"), None)
        out.append(TaskAudit(t.id, t.state, t.result, t.failure_message or "", t.retry_count, t.requeue_count,
                             t.owner_pid, env.get(planning.ENV_INPUT_BLOB, ""), env.get(planning.ENV_INPUT_ETAG, ""),
                             mp3, read_history(root, job_id, t.id)))
    return out
