"""The local Batch adapter's store: pools, the job and its tasks in SQLite (WAL)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from shared.domain.task_slots import slots_on_node
from shared.ports.batch import OutputFile, ResourceFile, TaskSpec

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pools (
    id TEXT PRIMARY KEY COLLATE NOCASE, slots_per_node INTEGER NOT NULL, target_dedicated INTEGER NOT NULL,
    target_spot INTEGER NOT NULL, metadata TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY COLLATE NOCASE, pool_id TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL COLLATE NOCASE, id TEXT NOT NULL COLLATE NOCASE,
    spec TEXT NOT NULL, state TEXT NOT NULL, result TEXT, exit_code INTEGER, failure_message TEXT NOT NULL DEFAULT '',
    retry_count INTEGER NOT NULL DEFAULT 0, requeue_count INTEGER NOT NULL DEFAULT 0, owner_pid INTEGER,
    created REAL NOT NULL, state_time REAL NOT NULL, start_time REAL, end_time REAL, UNIQUE (job_id, id));
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (job_id, state, seq);
CREATE INDEX IF NOT EXISTS tasks_done ON tasks (job_id, result, state_time);
"""


def spec_to_json(spec: TaskSpec) -> str:
    return json.dumps(asdict(spec))


def spec_from_json(raw: str) -> TaskSpec:
    d = json.loads(raw)
    return TaskSpec(
        id=d["id"],
        display_name=d["display_name"],
        command_line=d["command_line"],
        resource_files=tuple(ResourceFile(**r) for r in d["resource_files"]),
        output_files=tuple(OutputFile(**{**o, "upload_headers": tuple((k, v) for k, v in o.get("upload_headers", ()))})
                           for o in d["output_files"]),
        environment=tuple((k, v) for k, v in d["environment"]),
        max_task_retry_count=d["max_task_retry_count"],
        max_wall_clock_seconds=d["max_wall_clock_seconds"],
        retention_seconds=d["retention_seconds"],
        required_slots=d.get("required_slots", 1),
    )



def slots_taken(spec: TaskSpec, all_slots: int) -> int:
    """The local slots a task holds while it runs: its required slots, at most every slot this machine has."""
    return slots_on_node(spec.required_slots, all_slots)


def now() -> float:
    """The store's clock: epoch seconds to the microsecond (what every time column holds)."""
    return round(time.time(), 6)


def database_path(state_dir: Path) -> Path:
    return Path(state_dir) / "batch" / "batch.sqlite3"


class TaskTable:
    """The open database, shared by the gateway's threads (one lock), with the transitions the dispatcher makes."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()

    def q(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def claim(self, job_id: str, free_slots: int, all_slots: int) -> tuple[int, TaskSpec, int] | None:
        """Take the oldest queued task for this process when its slots fit in `free_slots`: (seq, spec, retries so
        far), or None. Oldest first, so a task that asks for many slots is not starved by smaller ones behind it;
        one asking for more than `all_slots` (this machine's cap, not Batch's node) runs on all of them."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT seq, spec, retry_count FROM tasks WHERE job_id=? AND state='active' ORDER BY seq LIMIT 1",
                    (job_id,),
                ).fetchone()
                if row is None or slots_taken(spec_from_json(row[1]), all_slots) > free_slots:
                    self._db.execute("COMMIT")
                    return None
                t = now()
                self._db.execute(
                    "UPDATE tasks SET state='running', owner_pid=?, start_time=?, state_time=? WHERE seq=?",
                    (os.getpid(), t, t, row[0]),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return row[0], spec_from_json(row[1]), row[2]

    def running_here(self, seq: int) -> bool:
        rows = self.q("SELECT state, owner_pid FROM tasks WHERE seq=?", seq)
        return bool(rows) and rows[0][0] == "running" and rows[0][1] == os.getpid()

    def retry(self, seq: int) -> None:
        """Back to the queue for another attempt (Batch's max_task_retry_count), unless terminated meanwhile."""
        self.q(
            "UPDATE tasks SET state='active', owner_pid=NULL, retry_count=retry_count+1, state_time=? "
            "WHERE seq=? AND state='running' AND owner_pid=?", now(), seq, os.getpid(),
        )

    def complete(self, seq: int, result: str, code: int | None, message: str) -> None:
        t = now()
        self.q(
            "UPDATE tasks SET state='completed', result=?, exit_code=?, failure_message=?, end_time=?, state_time=?, "
            "owner_pid=NULL WHERE seq=?", result, code, message, t, t, seq,
        )
