"""The local gateway's tasks as its SQLite store holds them, read from another process (tests, audits, benchmarks)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from localbatch.gateway import LocalBatchGateway
from localbatch.store import database_path, spec_from_json
from shared.ports.batch import TaskSpec


@dataclass(frozen=True)
class TaskRow:
    """One task as the store holds it, for tools in other processes (tests, audits, benchmarks)."""

    job_id: str
    id: str
    spec: TaskSpec
    state: str  # "active" | "running" | "completed"
    result: str | None  # "success" | "failure" once completed
    exit_code: int | None
    failure_message: str
    retry_count: int
    requeue_count: int
    owner_pid: int | None
    created: float
    start_time: float | None
    end_time: float | None

    @property
    def succeeded(self) -> bool:
        return self.state == "completed" and self.result == "success"

    @property
    def failed(self) -> bool:
        return self.state == "completed" and self.result == "failure"


_ROW_COLUMNS = ("job_id, id, spec, state, result, exit_code, failure_message, retry_count, requeue_count, owner_pid, "
                "created, start_time, end_time")


def read_tasks(state_dir: Path, job_id: str | None = None) -> list[TaskRow]:
    """Every task of the local gateway under `state_dir` (of one job, if given), oldest first;
    [] before the database exists."""
    path = database_path(state_dir)
    if not path.exists():
        return []
    db = sqlite3.connect(path, timeout=30)
    try:
        where, args = ("WHERE job_id=?", (job_id,)) if job_id is not None else ("", ())
        rows = db.execute(f"SELECT {_ROW_COLUMNS} FROM tasks {where} ORDER BY seq", args).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # the host is creating the database right now
        raise
    finally:
        db.close()
    return [TaskRow(job, tid, spec_from_json(raw), *rest) for job, tid, raw, *rest in rows]


def task_ids(gateway: LocalBatchGateway) -> list[str]:
    """The ids of the gateway's job's tasks, oldest first."""
    return [t.id for t in read_tasks(gateway.root.parent, gateway.job_id)]
