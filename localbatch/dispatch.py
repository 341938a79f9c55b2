"""The local Batch adapter's dispatcher: claims queued tasks up to the pool's slots and runs each as a node would
(download resource files, run the command in its own process group, upload outputs on their condition)."""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError

from localbatch.history import append_event
from localbatch.process import dies_with_host, hold_owner_lock, kill_group, split_command
from localbatch.store import TaskTable, slots_taken
from localbatch.transfers import download, upload
from shared.ports.batch import TaskSpec

log = logging.getLogger("mp3pipe.local_batch")

RETENTION_SWEEP_SECONDS = 30.0


class Dispatcher:
    """Runs this process's share of the job: as many tasks at once as fit in `slots()`, each holding its
    required slots, as on a Batch node."""

    def __init__(self, table: TaskTable, root: Path, job_id: str, ffmpeg_path: str, owner_lock: Path,
                 slots: Callable[[], int], sweep: Callable[[], object]) -> None:
        self.table, self.root, self.job_id, self.ffmpeg_path = table, root, job_id, ffmpeg_path
        self._owner_lock, self._slots, self._sweep = owner_lock, slots, sweep
        self._lock = threading.Lock()
        self._wake = threading.Condition()
        self._slots_used_here = 0
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._task_locks: dict[str, threading.Lock] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the gateway asks ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def stopping(self, task_id: str) -> Iterator[None]:
        """Hold the task still (no upload, no completion) while the gateway changes it, then kill its process."""
        with self._task_lock(task_id):
            yield
            proc = self._procs.get(task_id)
            if proc is not None:
                kill_group(proc)

    def notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def start(self) -> None:
        if self._thread is None:
            hold_owner_lock(self._owner_lock)  # before claiming: tasks we own point at it
            self._thread = threading.Thread(target=self._loop, name="local-batch", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self.notify()
        for proc in list(self._procs.values()):
            kill_group(proc)
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- the loop -------------------------------------------------------------------------------------------------
    def _task_lock(self, task_id: str) -> threading.Lock:
        with self._lock:
            return self._task_locks.setdefault(task_id.lower(), threading.Lock())

    def _record(self, task_id: str, event: str, **fields: object) -> None:
        append_event(self.root, self.job_id, task_id, event, **fields)

    def _loop(self) -> None:
        next_sweep = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + RETENTION_SWEEP_SECONDS
                try:
                    self._sweep()
                except Exception:  # noqa: BLE001 - a failed sweep must not stop the dispatcher
                    log.exception("retention sweep failed")
            with self._wake:
                capacity = self._slots()
                while self._slots_used_here < capacity and not self._stop.is_set():
                    claimed = self.table.claim(self.job_id, capacity - self._slots_used_here, capacity)
                    if claimed is None:
                        break
                    taken = slots_taken(claimed[1], capacity)
                    self._slots_used_here += taken
                    threading.Thread(target=self._run_claimed, args=(*claimed, taken), daemon=True).start()
                # Tasks added by another process are picked up within the timeout; ours wake us at once.
                self._wake.wait(timeout=0.5)

    def _run_claimed(self, seq: int, spec: TaskSpec, retry_count: int, taken: int) -> None:
        try:
            self._run(seq, spec, retry_count)
        except Exception:  # noqa: BLE001 - a bug here must not kill the dispatcher; the task fails visibly
            log.exception("local task %s crashed", spec.id)
            self.table.complete(seq, "failure", None, "local gateway error (see host log)")
        finally:
            with self._wake:
                self._slots_used_here -= taken
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
                download(rf.http_url, wd / rf.file_path)
        except Exception as exc:  # noqa: BLE001 - Batch reports this as a resource-file failure
            gone = isinstance(exc, ResourceNotFoundError)
            stderr_path.write_text(f"could not download a resource file: {type(exc).__name__}\n")
            if can_retry and not gone:
                self.table.retry(seq)
                return
            message = ("ResourceFileDownloadError: the input blob no longer exists" if gone else
                       f"ResourceFileDownloadError: the input could not be downloaded ({type(exc).__name__})")
            self._finish(seq, spec, wd, "failure", None, message)
            return

        argv = list(split_command(spec.command_line))
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
            proc = subprocess.Popen(dies_with_host(argv), cwd=wd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=env, start_new_session=True)
            (wd.parent / "pid").write_text(str(proc.pid))
            self._procs[spec.id] = proc
            try:
                code = proc.wait(timeout=spec.max_wall_clock_seconds)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                code = proc.wait()
                timed_out = True
            finally:
                self._procs.pop(spec.id, None)
        if self._stop.is_set():
            return  # shutting down: recovery requeues it at the next start

        if code == 0:
            self._finish(seq, spec, wd, "success", 0, "", can_retry=can_retry)
        elif can_retry and not timed_out:
            self.table.retry(seq)
        else:
            message = "MaxWallClockTimeExpiry: the task ran longer than its limit" if timed_out else ""
            self._finish(seq, spec, wd, "failure", code, message)

    def _finish(self, seq: int, spec: TaskSpec, wd: Path, result: str, code: int | None, message: str,
                *, can_retry: bool = False) -> None:
        """Upload output files on their condition, then complete; a terminated task uploads nothing."""
        with self._task_lock(spec.id):
            if not self.table.running_here(seq):
                return  # terminated (superseded) meanwhile: its output must not land
            try:
                self._upload_outputs(spec, wd, success=result == "success")
            except Exception as exc:  # noqa: BLE001 - storage unavailable: retry the task, else report
                log.warning("output upload failed for %s: %s", spec.id, type(exc).__name__)
                if can_retry:
                    self.table.retry(seq)
                    return
                if result == "success":
                    result, message = "failure", f"FileUploadError: could not upload the output ({type(exc).__name__})"
            self.table.complete(seq, result, code, message)

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
                etag = upload(rule.container_url, name, Path(match), rule.upload_headers)
                self._record(spec.id, "upload", path=name, etag=etag)
