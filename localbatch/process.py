"""Process control for the local Batch adapter: owner locks (flock), command splitting, setpriv, killing task trees."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("mp3pipe.local_batch")

HELD_OWNER_LOCKS: dict[Path, int] = {}  # lock file -> open descriptor, held for the life of this process


def hold_owner_lock(path: Path) -> None:
    """Hold an exclusive flock for as long as this process lives: the kernel drops it when the process dies."""
    if path in HELD_OWNER_LOCKS:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    HELD_OWNER_LOCKS[path] = fd


def owner_alive(path: Path) -> bool:
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


@functools.lru_cache(maxsize=16)
def split_command(command_line: str) -> tuple[str, ...]:
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


def dies_with_host(argv: list[str]) -> list[str]:
    """ffmpeg dies with the host thread that started it (kill -9 included), as a task dies with its node."""
    setpriv = _setpriv()
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill a task's whole process group (the runner and its ffmpeg), as Batch kills a task's process tree."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def kill_orphan(task_dir: Path) -> None:
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


def find_ffmpeg() -> str:
    """The ffmpeg the local node runs: FFMPEG_PATH, else the imageio-ffmpeg wheel's, else one on PATH."""
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
