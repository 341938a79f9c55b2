"""The local Batch adapter: Batch's task model (pool, persistent job, tasks) run as ffmpeg processes here.

State lives in SQLite under the state folder, so queued and running tasks survive a crash: a task whose
owning process died runs again after restart (each running process holds an flock on `owners/<pid>.lock`,
which the kernel releases when the process dies, whatever later becomes of the pid). Concurrency follows the
pool size the timer sets, capped at LOCAL_TASK_SLOTS (four slots per core by default), each task holding the slots
it asks for. Resource files are downloaded from their URLs and output files uploaded to their container URLs on the
stated upload condition, exactly as Batch does. Each task keeps an append-only history
(`history/<job>/<task>.jsonl`: its runs, command launches and uploads), so a task run or uploaded twice can be
seen.

This module is the port; beside it: store (SQLite), dispatch (running tasks), process (locks, process groups),
transfers (downloads, uploads), history (the journal). Local-only: never part of the Function App's package.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from localbatch.dispatch import Dispatcher
from localbatch.history import read_history
from localbatch.process import HELD_OWNER_LOCKS, find_ffmpeg, kill_orphan, owner_alive
from localbatch.store import TaskTable, database_path, now, spec_from_json, spec_to_json
from shared.ports.batch import (
    BrokenNode,
    CompletedTask,
    FinishedTask,
    JobNotFound,
    PoolSpec,
    PoolState,
    QueuedTask,
    TaskCounts,
    TaskSpec,
)
from shared.settings import default_local_task_slots

log = logging.getLogger("mp3pipe.local_batch")

MIN_RETENTION_SECONDS = 60  # TASK_RETENTION_SECONDS' lower bound


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


class LocalBatchGateway:
    """Batch on this machine: same states (active, running, completed), results, exit codes and output files."""

    def __init__(
        self,
        state_dir: Path,
        *,
        job_id: str = "mp3pipe-job",
        pool_id: str = "mp3pipe-pool",
        ffmpeg_path: str | None = None,
        max_slots: int | None = None,
        run_tasks: bool = True,
    ) -> None:
        self.root = Path(state_dir) / "batch"
        self.root.mkdir(parents=True, exist_ok=True)
        self.job_id = job_id
        self.pool_id = pool_id
        self.ffmpeg_path = ffmpeg_path or find_ffmpeg()
        self.max_slots = max_slots or default_local_task_slots()
        self.table = TaskTable(database_path(state_dir))
        self._dispatcher = Dispatcher(self.table, self.root, job_id, self.ffmpeg_path, self._owner_lock(os.getpid()),
                                      slots=self._slots, sweep=self.sweep_retention)
        self._swept_until = 0.0  # end time of the last completed task whose folder the retention sweep handled
        self._recover()
        if run_tasks:
            self.start()

    @classmethod
    def from_settings(cls, settings: Any, *, run_tasks: bool = True) -> LocalBatchGateway:
        return cls(
            settings.local_state_dir,
            job_id=settings.job_id,
            pool_id=settings.pool_id,
            ffmpeg_path=settings.ffmpeg_path or None,
            max_slots=settings.local_task_slots,
            run_tasks=run_tasks,
        )

    def _recover(self) -> None:
        """Tasks left running by a process that died go back to the queue (Batch requeues on node loss)."""
        rows = self.table.q("SELECT seq, owner_pid, job_id, id FROM tasks WHERE state='running'")
        t = now()
        for seq, pid, job_id, task_id in rows:
            if pid == os.getpid() or not pid or not owner_alive(self._owner_lock(pid)):
                kill_orphan(self.root / "tasks" / job_id / task_id)
                self.table.q(
                    "UPDATE tasks SET state='active', owner_pid=NULL, state_time=?, requeue_count=requeue_count+1 "
                    "WHERE seq=? AND state='running'", t, seq,
                )
                log.info("requeued task seq=%s left running by dead process %s", seq, pid)
        for lock in (self.root / "owners").glob("*.lock"):
            if lock not in HELD_OWNER_LOCKS:
                owner_alive(lock)  # removes the lock files of processes that have ended

    # -- the port ------------------------------------------------------------------------------------------------
    def ensure_pool(self, spec: PoolSpec) -> bool:
        cur = self.table.q(
            "INSERT OR IGNORE INTO pools (id, slots_per_node, target_dedicated, target_spot, metadata, created) "
            "VALUES (?, ?, ?, 0, ?, ?) RETURNING id",
            spec.id, spec.slots_per_node, spec.initial_dedicated_nodes, json.dumps(dict(spec.metadata)), now(),
        )
        self._notify()
        return bool(cur)

    def ensure_job(self, pool_id: str) -> bool:
        cur = self.table.q(
            "INSERT OR IGNORE INTO jobs (id, pool_id, created) VALUES (?, ?, ?) RETURNING id",
            self.job_id, pool_id, now(),
        )
        return bool(cur)

    def _require_job(self) -> None:
        """Raise JobNotFound, as Batch answers 404 JobNotFound, when the job does not exist."""
        if not self.table.q("SELECT 1 FROM jobs WHERE id=?", self.job_id):
            raise JobNotFound(f"job {self.job_id} does not exist")

    def add_task(self, task: TaskSpec) -> bool:
        self._require_job()
        t = now()
        cur = self.table.q(
            "INSERT OR IGNORE INTO tasks (job_id, id, spec, state, created, state_time) "
            "VALUES (?, ?, ?, 'active', ?, ?) RETURNING seq",
            self.job_id, task.id, spec_to_json(task), t, t,
        )
        if cur:
            self._notify()
        return bool(cur)

    def terminate_task(self, task_id: str) -> bool:
        with self._dispatcher.stopping(task_id):
            t = now()
            rows = self.table.q(
                "UPDATE tasks SET state='completed', result='failure', exit_code=NULL, failure_message=?, "
                "end_time=?, state_time=?, owner_pid=NULL WHERE job_id=? AND id=? AND state IN ('active', 'running') "
                "RETURNING seq", "TaskEnded: the task was terminated", t, t, self.job_id, task_id,
            )
        return bool(rows)

    def task_status(self, task_id: str) -> str | None:
        row = self.task_state(task_id)
        return row[0] if row else None

    def task_counts(self) -> TaskCounts:
        self._require_job()
        rows = self.table.q(
            "SELECT state, result, COUNT(*), SUM(COALESCE(json_extract(spec, '$.required_slots'), 1)) FROM tasks "
            "WHERE job_id=? GROUP BY state, result", self.job_id
        )
        c = {"active": 0, "running": 0, "completed": 0, "succeeded": 0, "failed": 0, "active_slots": 0,
             "running_slots": 0}
        for state, result, n, slots in rows:
            c[state] += n
            if state == "completed":
                c["succeeded" if result == "success" else "failed"] += n
            else:
                c[f"{state}_slots"] += slots
        return TaskCounts(**c)

    def open_tasks(self) -> dict[str, str]:
        self._require_job()
        rows = self.table.q("SELECT id, state FROM tasks WHERE job_id=? AND state!='completed'", self.job_id)
        return {tid: state for tid, state in rows}

    def pool_state(self) -> PoolState | None:
        rows = self.table.q("SELECT slots_per_node, target_dedicated, target_spot FROM pools WHERE id=?", self.pool_id)
        if not rows:
            return None
        slots, ded, spot = rows[0]
        # Local "nodes" are ready the moment they are asked for.
        return PoolState("steady", ded, spot, ded, spot, slots_per_node=slots)

    def resize(self, dedicated: int, spot: int) -> None:
        if self.pool_state() is None:
            raise JobNotFound(f"pool {self.pool_id} does not exist")
        self.table.q("UPDATE pools SET target_dedicated=?, target_spot=? WHERE id=?", dedicated, spot, self.pool_id)
        self._notify()

    def finished_tasks_since(self, since: dt.datetime | None, limit: int | None = None) -> list[FinishedTask]:
        self._require_job()
        # Times are stored to the microsecond; half a microsecond of slack absorbs float round-trips.
        t0 = since.timestamp() - 5e-7 if since else 0.0
        rows = self.table.q(
            "SELECT id, spec, result, exit_code, failure_message, retry_count, end_time, state_time FROM tasks "
            "WHERE job_id=? AND state='completed' AND state_time>=? "
            "ORDER BY state_time, seq LIMIT ?", self.job_id, t0, -1 if limit is None else limit,
        )
        out = []
        for tid, spec_raw, result, code, message, retries, end, state_time in rows:
            spec = spec_from_json(spec_raw)
            out.append(FinishedTask(
                id=tid, display_name=spec.display_name, succeeded=result == "success", exit_code=code,
                failure_message=message, attempts=retries + 1, finished_at=_utc(end or state_time),
                state_transition_time=_utc(state_time), environment=spec.env(),
            ))
        return out

    def completed_tasks(self, before: dt.datetime, limit: int) -> list[CompletedTask]:
        self._require_job()
        rows = self.table.q(
            "SELECT id, result, state_time FROM tasks WHERE job_id=? AND state='completed' AND state_time<? "
            "ORDER BY state_time, seq LIMIT ?", self.job_id, before.timestamp(), max(limit, 0),
        )
        return [CompletedTask(tid, result == "success", _utc(when)) for tid, result, when in rows]

    def queued_tasks(self, created_before: dt.datetime, limit: int) -> list[QueuedTask]:
        self._require_job()
        rows = self.table.q(
            "SELECT id, spec, created FROM tasks WHERE job_id=? AND state='active' AND created<? ORDER BY seq LIMIT ?",
            self.job_id, created_before.timestamp(), max(limit, 0),
        )
        return [QueuedTask(tid, _utc(created), spec_from_json(raw).env()) for tid, raw, created in rows]

    def delete_task(self, task_id: str) -> bool:
        """The task leaves the job and its folder (logs) leaves the disk; a running one is killed first."""
        with self._dispatcher.stopping(task_id):
            rows = self.table.q("DELETE FROM tasks WHERE job_id=? AND id=? RETURNING seq", self.job_id, task_id)
        shutil.rmtree(self.root / "tasks" / self.job_id / task_id, ignore_errors=True)
        return bool(rows)

    def stop_resize(self) -> None:
        """Local resizes take effect at once: there is never one to stop."""

    def broken_nodes(self) -> list[BrokenNode]:
        return []  # local "nodes" are this machine's cores: none can fail a start task

    def remove_nodes(self, node_ids: list[str]) -> None:
        """No local node is ever broken (broken_nodes is empty), so there is nothing to remove."""

    def sweep_retention(self, at: float | None = None) -> int:
        """Remove the folders (stdout/stderr) of tasks completed longer ago than their retention time, as Batch
        does on a node; returns how many went. Runs from the dispatcher about every RETENTION_SWEEP_SECONDS."""
        at = now() if at is None else at
        rows = self.table.q(
            "SELECT id, spec, end_time FROM tasks WHERE job_id=? AND state='completed' AND end_time>? "
            "AND end_time<? ORDER BY end_time", self.job_id, self._swept_until, at - MIN_RETENTION_SECONDS,
        )
        removed = 0
        for tid, spec_raw, end in rows:
            if end > at - spec_from_json(spec_raw).retention_seconds:
                break  # retention is one setting for every task: the rest are newer
            folder = self.root / "tasks" / self.job_id / tid
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
            self._swept_until = end
        return removed

    # -- extras for tests and tools ------------------------------------------------------------------------------
    def task_state(self, task_id: str) -> tuple[str, str | None, int | None] | None:
        rows = self.table.q("SELECT state, result, exit_code FROM tasks WHERE job_id=? AND id=?", self.job_id, task_id)
        return rows[0] if rows else None

    def history(self, task_id: str) -> list[dict[str, Any]]:
        return read_history(self.root, self.job_id, task_id)

    def success_uploads_since(self, since: float) -> list[tuple[TaskSpec, str]]:
        """(task, output path) for each on-success output (the MP3) that a task which succeeded uploaded at or after
        `since` (epoch seconds), oldest task first."""
        rows = self.table.q("SELECT spec FROM tasks WHERE job_id=? AND state='completed' AND result='success' "
                            "AND end_time>=? ORDER BY seq", self.job_id, since)
        out: list[tuple[TaskSpec, str]] = []
        for (raw,) in rows:
            spec = spec_from_json(raw)
            on_success = {o.path for o in spec.output_files if o.upload_condition.lower() == "tasksuccess"}
            uploaded = {e["path"] for e in self.history(spec.id)
                        if e["event"] == "upload" and e.get("path") in on_success and e["at"] >= since}
            out += [(spec, path) for path in sorted(uploaded)]
        return out


    # -- execution -----------------------------------------------------------------------------------------------
    def _owner_lock(self, pid: int) -> Path:
        return self.root / "owners" / f"{pid}.lock"

    def start(self) -> None:
        self._dispatcher.start()

    def close(self) -> None:
        self._dispatcher.close()

    def _notify(self) -> None:
        self._dispatcher.notify()

    def _slots(self) -> int:
        pool = self.pool_state()
        if pool is None:
            return 0
        return min((pool.target_dedicated + pool.target_spot) * pool.slots_per_node, self.max_slots)
