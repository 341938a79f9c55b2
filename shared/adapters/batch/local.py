"""The local Batch adapter: Batch's task model (pool, persistent job, tasks) run as ffmpeg processes here.

State lives in SQLite under the state folder, so queued and running tasks survive a crash: a task whose
owning process died runs again after restart (each running process holds an flock on `owners/<pid>.lock`,
which the kernel releases when the process dies, whatever later becomes of the pid). Concurrency follows the
pool size the timer sets, capped at the machine's cores. Resource files are downloaded from their URLs and
output files uploaded to their container URLs on the stated upload condition, exactly as Batch does. Each task
keeps an append-only history (`history/<job>/<task>.jsonl`: its runs, command launches and uploads), so a task
run or uploaded twice can be seen.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import glob
import json
import logging
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.ports.batch import (
    BrokenNode,
    CompletedTask,
    FinishedTask,
    JobNotFound,
    OutputFile,
    PoolSpec,
    PoolState,
    QueuedTask,
    ResourceFile,
    TaskCounts,
    TaskSpec,
)

log = logging.getLogger("mp3pipe.local_batch")

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


RETENTION_SWEEP_SECONDS = 30.0
MIN_RETENTION_SECONDS = 60  # TASK_RETENTION_SECONDS' lower bound


def _now() -> float:
    return round(time.time(), 6)


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


_HELD_OWNER_LOCKS: dict[Path, int] = {}  # lock file -> open descriptor, held for the life of this process


def _hold_owner_lock(path: Path) -> None:
    """Hold an exclusive flock for as long as this process lives: the kernel drops it when the process dies."""
    if path in _HELD_OWNER_LOCKS:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _HELD_OWNER_LOCKS[path] = fd


def _owner_alive(path: Path) -> bool:
    """Whether the process that wrote this owner lock still runs. A pid alone cannot say: after a reboot or a
    wrap-around the same number may belong to an unrelated process, which would leave the task running for ever."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the lock if we got it
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return False


def spec_to_json(spec: TaskSpec) -> str:
    return json.dumps(asdict(spec))


def spec_from_json(raw: str) -> TaskSpec:
    d = json.loads(raw)
    return TaskSpec(
        id=d["id"],
        display_name=d["display_name"],
        command_line=d["command_line"],
        resource_files=tuple(ResourceFile(**r) for r in d["resource_files"]),
        output_files=tuple(OutputFile(**o) for o in d["output_files"]),
        environment=tuple((k, v) for k, v in d["environment"]),
        max_task_retry_count=d["max_task_retry_count"],
        max_wall_clock_seconds=d["max_wall_clock_seconds"],
        retention_seconds=d["retention_seconds"],
    )


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
        self.ffmpeg_path = ffmpeg_path or _default_ffmpeg()
        self.max_slots = max_slots or os.cpu_count() or 1
        self._db = sqlite3.connect(self.root / "batch.sqlite3", timeout=30, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._wake = threading.Condition()
        self._running_here = 0
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._task_locks: dict[str, threading.Lock] = {}
        self._stop = threading.Event()
        self._dispatcher: threading.Thread | None = None
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
            run_tasks=run_tasks,
        )

    # -- SQL helpers ---------------------------------------------------------------------------------------------
    def _q(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _recover(self) -> None:
        """Tasks left running by a process that died go back to the queue (Batch requeues on node loss)."""
        rows = self._q("SELECT seq, owner_pid, job_id, id FROM tasks WHERE state='running'")
        now = _now()
        for seq, pid, job_id, task_id in rows:
            if pid == os.getpid() or not pid or not _owner_alive(self._owner_lock(pid)):
                _kill_orphan(self.root / "tasks" / job_id / task_id)
                self._q(
                    "UPDATE tasks SET state='active', owner_pid=NULL, state_time=?, requeue_count=requeue_count+1 "
                    "WHERE seq=? AND state='running'", now, seq,
                )
                log.info("requeued task seq=%s left running by dead process %s", seq, pid)
        for lock in (self.root / "owners").glob("*.lock"):
            if lock not in _HELD_OWNER_LOCKS:
                _owner_alive(lock)  # removes the lock files of processes that have ended

    # -- the port ------------------------------------------------------------------------------------------------
    def ensure_pool(self, spec: PoolSpec) -> bool:
        cur = self._q(
            "INSERT OR IGNORE INTO pools (id, slots_per_node, target_dedicated, target_spot, metadata, created) "
            "VALUES (?, ?, ?, 0, ?, ?) RETURNING id",
            spec.id, spec.slots_per_node, spec.initial_dedicated_nodes, json.dumps(dict(spec.metadata)), _now(),
        )
        self._notify()
        return bool(cur)

    def ensure_job(self, pool_id: str) -> bool:
        cur = self._q(
            "INSERT OR IGNORE INTO jobs (id, pool_id, created) VALUES (?, ?, ?) RETURNING id",
            self.job_id, pool_id, _now(),
        )
        return bool(cur)

    def _require_job(self) -> None:
        """Raise JobNotFound, as Batch answers 404 JobNotFound, when the job does not exist."""
        if not self._q("SELECT 1 FROM jobs WHERE id=?", self.job_id):
            raise JobNotFound(f"job {self.job_id} does not exist")

    def add_task(self, task: TaskSpec) -> bool:
        self._require_job()
        now = _now()
        cur = self._q(
            "INSERT OR IGNORE INTO tasks (job_id, id, spec, state, created, state_time) "
            "VALUES (?, ?, ?, 'active', ?, ?) RETURNING seq",
            self.job_id, task.id, spec_to_json(task), now, now,
        )
        if cur:
            self._notify()
        return bool(cur)

    def terminate_task(self, task_id: str) -> bool:
        with self._task_lock(task_id):
            now = _now()
            rows = self._q(
                "UPDATE tasks SET state='completed', result='failure', exit_code=NULL, failure_message=?, "
                "end_time=?, state_time=?, owner_pid=NULL WHERE job_id=? AND id=? AND state IN ('active', 'running') "
                "RETURNING seq", "TaskEnded: the task was terminated", now, now, self.job_id, task_id,
            )
            proc = self._procs.get(task_id)
            if proc is not None:
                _kill_group(proc)
        return bool(rows)

    def _task_lock(self, task_id: str) -> threading.Lock:
        with self._lock:
            return self._task_locks.setdefault(task_id.lower(), threading.Lock())

    def _still_running_here(self, seq: int) -> bool:
        rows = self._q("SELECT state, owner_pid FROM tasks WHERE seq=?", seq)
        return bool(rows) and rows[0][0] == "running" and rows[0][1] == os.getpid()

    def task_status(self, task_id: str) -> str | None:
        row = self.task_state(task_id)
        return row[0] if row else None

    def task_counts(self) -> TaskCounts:
        self._require_job()
        rows = self._q(
            "SELECT state, result, COUNT(*) FROM tasks WHERE job_id=? GROUP BY state, result", self.job_id
        )
        c = {"active": 0, "running": 0, "completed": 0, "succeeded": 0, "failed": 0}
        for state, result, n in rows:
            c[state] += n
            if state == "completed":
                c["succeeded" if result == "success" else "failed"] += n
        return TaskCounts(**c)

    def open_tasks(self) -> dict[str, str]:
        self._require_job()
        rows = self._q("SELECT id, state FROM tasks WHERE job_id=? AND state!='completed'", self.job_id)
        return {tid: state for tid, state in rows}

    def pool_state(self) -> PoolState | None:
        rows = self._q("SELECT slots_per_node, target_dedicated, target_spot FROM pools WHERE id=?", self.pool_id)
        if not rows:
            return None
        slots, ded, spot = rows[0]
        # Local "nodes" are ready the moment they are asked for.
        return PoolState("steady", ded, spot, ded, spot, slots_per_node=slots)

    def resize(self, dedicated: int, spot: int) -> None:
        if self.pool_state() is None:
            raise JobNotFound(f"pool {self.pool_id} does not exist")
        self._q("UPDATE pools SET target_dedicated=?, target_spot=? WHERE id=?", dedicated, spot, self.pool_id)
        self._notify()

    def failed_tasks_since(self, since: dt.datetime | None) -> list[FinishedTask]:
        self._require_job()
        # Times are stored to the microsecond; half a microsecond of slack absorbs float round-trips.
        t0 = since.timestamp() - 5e-7 if since else 0.0
        rows = self._q(
            "SELECT id, spec, exit_code, failure_message, retry_count, end_time, state_time FROM tasks "
            "WHERE job_id=? AND state='completed' AND result='failure' AND state_time>=? ORDER BY state_time, seq",
            self.job_id, t0,
        )
        out = []
        for tid, spec_raw, code, message, retries, end, state_time in rows:
            spec = spec_from_json(spec_raw)
            out.append(FinishedTask(
                id=tid, display_name=spec.display_name, exit_code=code, failure_message=message,
                attempts=retries + 1, finished_at=_utc(end or state_time), state_transition_time=_utc(state_time),
                environment=spec.env(),
            ))
        return out

    def completed_tasks(self, before: dt.datetime, limit: int) -> list[CompletedTask]:
        self._require_job()
        rows = self._q(
            "SELECT id, result, state_time FROM tasks WHERE job_id=? AND state='completed' AND state_time<? "
            "ORDER BY state_time, seq LIMIT ?", self.job_id, before.timestamp(), max(limit, 0),
        )
        return [CompletedTask(tid, result == "success", _utc(when)) for tid, result, when in rows]

    def queued_tasks(self, created_before: dt.datetime, limit: int) -> list[QueuedTask]:
        self._require_job()
        rows = self._q(
            "SELECT id, spec, created FROM tasks WHERE job_id=? AND state='active' AND created<? ORDER BY seq LIMIT ?",
            self.job_id, created_before.timestamp(), max(limit, 0),
        )
        return [QueuedTask(tid, _utc(created), spec_from_json(raw).env()) for tid, raw, created in rows]

    def delete_task(self, task_id: str) -> bool:
        """The task leaves the job and its folder (logs) leaves the disk; a running one is killed first."""
        with self._task_lock(task_id):
            proc = self._procs.get(task_id)
            if proc is not None:
                _kill_group(proc)
            rows = self._q("DELETE FROM tasks WHERE job_id=? AND id=? RETURNING seq", self.job_id, task_id)
        shutil.rmtree(self.root / "tasks" / self.job_id / task_id, ignore_errors=True)
        return bool(rows)

    def stop_resize(self) -> None:
        """Local resizes take effect at once: there is never one to stop."""

    def broken_nodes(self) -> list[BrokenNode]:
        return []  # local "nodes" are this machine's cores: none can fail a start task

    def remove_nodes(self, node_ids: list[str]) -> None:
        """No local node is ever broken (broken_nodes is empty), so there is nothing to remove."""

    def sweep_retention(self, now: float | None = None) -> int:
        """Remove the folders (stdout/stderr) of tasks completed longer ago than their retention time, as Batch
        does on a node; returns how many went. Runs from the dispatcher about every RETENTION_SWEEP_SECONDS."""
        now = _now() if now is None else now
        rows = self._q(
            "SELECT id, spec, end_time FROM tasks WHERE job_id=? AND state='completed' AND end_time>? "
            "AND end_time<? ORDER BY end_time", self.job_id, self._swept_until, now - MIN_RETENTION_SECONDS,
        )
        removed = 0
        for tid, spec_raw, end in rows:
            if end > now - spec_from_json(spec_raw).retention_seconds:
                break  # retention is one setting for every task: the rest are newer
            folder = self.root / "tasks" / self.job_id / tid
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
            self._swept_until = end
        return removed

    # -- extras for tests and tools ------------------------------------------------------------------------------
    def task_state(self, task_id: str) -> tuple[str, str | None, int | None] | None:
        rows = self._q("SELECT state, result, exit_code FROM tasks WHERE job_id=? AND id=?", self.job_id, task_id)
        return rows[0] if rows else None

    def task_ids(self) -> list[str]:
        return [r[0] for r in self._q("SELECT id FROM tasks WHERE job_id=? ORDER BY seq", self.job_id)]

    def history(self, task_id: str) -> list[dict[str, Any]]:
        return read_history(self.root, self.job_id, task_id)

    def _record(self, task_id: str, event: str, **fields: Any) -> None:
        """Append one event to the task's history; kept across runs and restarts, so duplicates are observable."""
        path = history_path(self.root, self.job_id, task_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"event": event, "pid": os.getpid(), "at": _now(), **fields}) + "\n"
        with open(path, "a", encoding="utf-8") as fh:  # one short append per event: whole lines even on kill -9
            fh.write(line)

    # -- execution -----------------------------------------------------------------------------------------------
    def _owner_lock(self, pid: int) -> Path:
        return self.root / "owners" / f"{pid}.lock"

    def start(self) -> None:
        if self._dispatcher is None:
            _hold_owner_lock(self._owner_lock(os.getpid()))  # before claiming: tasks we own point at it
            self._dispatcher = threading.Thread(target=self._dispatch_loop, name="local-batch", daemon=True)
            self._dispatcher.start()

    def close(self) -> None:
        self._stop.set()
        self._notify()
        for proc in list(self._procs.values()):
            _kill_group(proc)
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=10)

    def _notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def _slots(self) -> int:
        pool = self.pool_state()
        if pool is None:
            return 0
        return min((pool.target_dedicated + pool.target_spot) * pool.slots_per_node, self.max_slots)

    def _claim(self) -> tuple[int, TaskSpec, int] | None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT seq, spec, retry_count FROM tasks WHERE job_id=? AND state='active' ORDER BY seq LIMIT 1",
                    (self.job_id,),
                ).fetchone()
                if row is None:
                    self._db.execute("COMMIT")
                    return None
                now = _now()
                self._db.execute(
                    "UPDATE tasks SET state='running', owner_pid=?, start_time=?, state_time=? WHERE seq=?",
                    (os.getpid(), now, now, row[0]),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return row[0], spec_from_json(row[1]), row[2]

    def _dispatch_loop(self) -> None:
        next_sweep = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + RETENTION_SWEEP_SECONDS
                try:
                    self.sweep_retention()
                except Exception:  # noqa: BLE001 - a failed sweep must not stop the dispatcher
                    log.exception("retention sweep failed")
            with self._wake:
                while self._running_here < self._slots() and not self._stop.is_set():
                    claimed = self._claim()
                    if claimed is None:
                        break
                    self._running_here += 1
                    threading.Thread(target=self._run_claimed, args=claimed, daemon=True).start()
                # Tasks added by another process are picked up within the timeout; ours wake us at once.
                self._wake.wait(timeout=0.5)

    def _run_claimed(self, seq: int, spec: TaskSpec, retry_count: int) -> None:
        try:
            self._run(seq, spec, retry_count)
        except Exception:  # noqa: BLE001 - a bug here must not kill the dispatcher; the task fails visibly
            log.exception("local task %s crashed", spec.id)
            self._complete(seq, "failure", None, "local gateway error (see host log)")
        finally:
            with self._wake:
                self._running_here -= 1
                self._wake.notify_all()

    def _run(self, seq: int, spec: TaskSpec, retry_count: int) -> None:
        task_dir = self.root / "tasks" / self.job_id / spec.id
        wd = task_dir / "wd"
        shutil.rmtree(task_dir, ignore_errors=True)
        wd.mkdir(parents=True)
        stdout_path, stderr_path = task_dir / "stdout.txt", task_dir / "stderr.txt"
        self._record(spec.id, "run", attempt=retry_count)
        try:
            self._attempt(seq, spec, retry_count, wd, stdout_path, stderr_path)
        finally:
            shutil.rmtree(wd, ignore_errors=True)

    def _attempt(self, seq: int, spec: TaskSpec, retry_count: int, wd: Path, stdout_path: Path,
                 stderr_path: Path) -> None:
        can_retry = retry_count < spec.max_task_retry_count
        try:
            for rf in spec.resource_files:
                _download(rf.http_url, wd / rf.file_path)
        except Exception as exc:  # noqa: BLE001 - Batch reports this as a resource-file failure
            gone = isinstance(exc, ResourceNotFoundError)
            stderr_path.write_text(f"could not download a resource file: {type(exc).__name__}\n")
            if can_retry and not gone:
                self._retry(seq)
                return
            message = ("ResourceFileDownloadError: the input blob no longer exists" if gone else
                       f"ResourceFileDownloadError: the input could not be downloaded ({type(exc).__name__})")
            self._finish(seq, spec, wd, "failure", None, message)
            return

        argv = list(_split(spec.command_line))
        # This machine is the node: its python3 and ffmpeg are the ones the gateway was given.
        if argv and argv[0] == "ffmpeg":
            argv[0] = self.ffmpeg_path
        elif argv and argv[0] == "python3":
            argv[0] = sys.executable
        env = {**os.environ, "MP3PIPE_FFMPEG": self.ffmpeg_path, **spec.env()}
        timed_out = False
        self._record(spec.id, "exec")
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            # No preexec_fn: Python code between fork and exec can deadlock in a threaded host (it did, on an
            # import lock held by another thread at fork time). The parent-death signal is set by setpriv instead.
            proc = subprocess.Popen(_dies_with_host(argv), cwd=wd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=env, start_new_session=True)
            (wd.parent / "pid").write_text(str(proc.pid))
            self._procs[spec.id] = proc
            try:
                code = proc.wait(timeout=spec.max_wall_clock_seconds)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                code = proc.wait()
                timed_out = True
            finally:
                self._procs.pop(spec.id, None)
        if self._stop.is_set():
            return  # shutting down: recovery requeues it at the next start

        if code == 0:
            self._finish(seq, spec, wd, "success", 0, "", can_retry=can_retry)
        elif can_retry and not timed_out:
            self._retry(seq)
        else:
            message = "MaxWallClockTimeExpiry: the task ran longer than its limit" if timed_out else ""
            self._finish(seq, spec, wd, "failure", code, message)

    def _retry(self, seq: int) -> None:
        """Back to the queue for another attempt (Batch's max_task_retry_count), unless terminated meanwhile."""
        self._q(
            "UPDATE tasks SET state='active', owner_pid=NULL, retry_count=retry_count+1, state_time=? "
            "WHERE seq=? AND state='running' AND owner_pid=?", _now(), seq, os.getpid(),
        )

    def _finish(self, seq: int, spec: TaskSpec, wd: Path, result: str, code: int | None, message: str,
                *, can_retry: bool = False) -> None:
        """Upload output files on their condition, then complete; a terminated task uploads nothing."""
        with self._task_lock(spec.id):
            if not self._still_running_here(seq):
                return  # terminated (superseded) meanwhile: its output must not land
            try:
                self._upload_outputs(spec, wd, success=result == "success")
            except Exception as exc:  # noqa: BLE001 - storage unavailable: retry the task, else report
                log.warning("output upload failed for %s: %s", spec.id, type(exc).__name__)
                if can_retry:
                    self._retry(seq)
                    return
                if result == "success":
                    result, message = "failure", f"FileUploadError: could not upload the output ({type(exc).__name__})"
            self._complete(seq, result, code, message)

    def _complete(self, seq: int, result: str, code: int | None, message: str) -> None:
        now = _now()
        self._q(
            "UPDATE tasks SET state='completed', result=?, exit_code=?, failure_message=?, end_time=?, state_time=?, "
            "owner_pid=NULL WHERE seq=?", result, code, message, now, now, seq,
        )

    def _upload_outputs(self, spec: TaskSpec, wd: Path, *, success: bool) -> None:
        wanted = {"taskcompletion", "tasksuccess" if success else "taskfailure"}
        for rule in spec.output_files:
            if rule.upload_condition.lower() not in wanted:
                continue
            matches = sorted(glob.glob(str(wd / rule.pattern)))
            wildcard = any(ch in rule.pattern for ch in "*?[")
            for match in matches:
                name = f"{rule.path.rstrip('/')}/{Path(match).name}" if wildcard else rule.path
                self._record(spec.id, "uploading", path=name)
                etag = _upload(rule.container_url, name, Path(match))
                self._record(spec.id, "upload", path=name, etag=etag)


def read_task_table(state_dir: Path, columns: str, where: str = "",
                    args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of the local gateway's task table under `state_dir`, for tools in other processes (tests, audits,
    benchmarks): `SELECT <columns> FROM tasks [WHERE <where>] ORDER BY seq`; [] before the table exists."""
    path = Path(state_dir) / "batch" / "batch.sqlite3"
    if not path.exists():
        return []
    db = sqlite3.connect(path, timeout=30)
    try:
        return db.execute(f"SELECT {columns} FROM tasks {'WHERE ' + where if where else ''} ORDER BY seq",
                          args).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # the host is creating the database right now
        raise
    finally:
        db.close()


def history_path(batch_root: Path, job_id: str, task_id: str) -> Path:
    return Path(batch_root) / "history" / job_id.lower() / f"{task_id.lower()}.jsonl"


def read_history(batch_root: Path, job_id: str, task_id: str) -> list[dict[str, Any]]:
    """A task's events, oldest first: "run" (claimed), "exec" (its command launched), "uploading"/"upload"."""
    try:
        lines = history_path(batch_root, job_id, task_id).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.endswith("}")]


@functools.lru_cache(maxsize=16)
def _split(command_line: str) -> tuple[str, ...]:
    """A command line's arguments, as the node agent splits it. shlex is pure Python (~15 ms for the runner's 7 KB
    line) and every task of a preset has the same line, so each is split once."""
    return tuple(shlex.split(command_line))


@functools.cache
def _setpriv() -> str | None:
    """util-linux `setpriv` when it can set a parent-death signal (Linux); None elsewhere."""
    path = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    if path and subprocess.run([path, "--pdeathsig", "KILL", "--", "true"], capture_output=True).returncode == 0:
        return path
    return None


def _dies_with_host(argv: list[str]) -> list[str]:
    """ffmpeg dies with the host thread that started it (kill -9 included), as a task dies with its node."""
    setpriv = _setpriv()
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill a task's whole process group (the runner and its ffmpeg), as Batch kills a task's process tree."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _kill_orphan(task_dir: Path) -> None:
    """Kill a task process that outlived its dead host (no setpriv here, or the host died before it was set)."""
    try:
        pid = int((task_dir / "pid").read_text())
        cwd = os.readlink(f"/proc/{pid}/cwd")  # the pid may have been reused: it must still be in the task's folder
    except (OSError, ValueError):
        return
    if cwd.removesuffix(" (deleted)") == str(task_dir / "wd"):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
            log.info("killed task process %s left by a dead host", pid)


@functools.cache
def _http() -> Any:
    """One pooled HTTP client for resource files; urllib3 retries what a node agent retries, with backoff.

    Connection failures and 5xx (storage restarting, throttled) are retried for about a minute before the attempt
    counts as failed; a 404 (the input was deleted) is not retried.
    """
    import urllib3

    from shared.events import ScrubSas

    logging.getLogger("urllib3.connectionpool").addFilter(ScrubSas())  # its retry warnings print the SAS URL
    retry = urllib3.Retry(total=8, connect=8, read=3, status=5, backoff_factor=0.5, backoff_max=15,
                          status_forcelist=(429, 500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
                          raise_on_status=False)
    return urllib3.PoolManager(num_pools=4, maxsize=8, retries=retry,
                               timeout=urllib3.Timeout(connect=10, read=60))


def _download(url: str, dest: Path) -> None:
    """One streamed GET to disk through a 1 MiB buffer, as a node agent fetches a resource file.

    Memory stays flat whatever the file's size, and it is one request: download_blob(max_concurrency=4) reads a
    32 MiB first range into memory, then 4 MiB ranges on 4 threads, at ~3x the CPU per byte here and more
    requests for Azurite, which shares the cores with ffmpeg.
    """
    from azure.core.exceptions import HttpResponseError

    dest.parent.mkdir(parents=True, exist_ok=True)
    response = _http().request("GET", url, preload_content=False)
    try:
        if response.status == 404:
            raise ResourceNotFoundError(f"BlobNotFound: {response.reason}")
        if response.status >= 400:
            raise HttpResponseError(f"{response.status} {response.reason}")
        buffer = memoryview(bytearray(1 << 20))
        with open(dest, "wb") as fh:
            while n := response.readinto(buffer):
                fh.write(buffer[:n])
    finally:
        response.release_conn()


@functools.cache
def _upload_transport() -> Any:
    """One HTTP transport (one connection pool) for every output upload, not a new one per file."""
    from azure.core.pipeline.transport import RequestsTransport

    return RequestsTransport()


def _upload(container_url: str, name: str, path: Path) -> str:
    """Upload one output file; returns the committed blob's ETag."""
    from azure.storage.blob import ContainerClient

    blob = ContainerClient.from_container_url(container_url, transport=_upload_transport()).get_blob_client(name)
    with open(path, "rb") as fh:
        # A block blob appears only when its block list commits: readers never see half an MP3.
        return str(blob.upload_blob(fh, overwrite=True, max_concurrency=4)["etag"]).strip('"')


def _default_ffmpeg() -> str:
    configured = os.environ.get("FFMPEG_PATH")
    if configured:
        return configured
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - fall back to a system ffmpeg
        found = shutil.which("ffmpeg")
        if not found:
            raise RuntimeError("no ffmpeg: install the imageio-ffmpeg wheel or set FFMPEG_PATH") from None
        return found
