"""Starts and stops Azurite (the npm storage emulator: blob and queue services) on free loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Azurite's published development account: the only key allowed in this repo.
DEV_ACCOUNT = "devstoreaccount1"
ACCESS_LOG_SETTING = "MP3PIPE_AZURITE_ACCESS_LOG"  # "1": Azurite logs each request (method, path, status)
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# Azurite saves its metadata (LokiJS autosaveInterval) every 5 s: a kill -9 can forget what it acknowledged since.
SAVE_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds the socket listening on 127.0.0.1:`port` (Linux /proc; elsewhere: connectable)."""
    try:
        with open("/proc/net/tcp") as fh:
            rows = [line.split() for line in fh.readlines()[1:]]
    except OSError:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False
    local = f"0100007F:{port:04X}"
    wanted = {f"socket:[{r[9]}]" for r in rows if r[1] == local and r[3] == "0A"}
    if not wanted:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                return True
        except OSError:
            continue  # closed while we looked
    return False


def connection_string(port: int, queue_port: int | None = None) -> str:
    queue = f"QueueEndpoint=http://127.0.0.1:{queue_port}/{DEV_ACCOUNT};" if queue_port else ""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};{queue}"
    )


def azurite_binary() -> str:
    """The combined `azurite` (blob, queue and table services in one process; the table port goes unused)."""
    local = REPO / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if not found:
        raise RuntimeError("Azurite is not installed: run `npm ci` in the repo (make setup does it)")
    return found


class Azurite:
    """One Azurite: blob service on `port`, queue service on `queue_port`; `with Azurite(folder) as az:
    az.connection_string`."""

    def __init__(self, location: Path, port: int | None = None, log_file: Path | None = None,
                 debug_log: Path | None = None, access_log: bool | None = None) -> None:
        self.location = Path(location)
        # One line per request in the log file (bench/many_files.py counts them); off unless asked for.
        self.access_log = os.environ.get(ACCESS_LOG_SETTING) == "1" if access_log is None else access_log
        self.port = port or free_port()
        # A fixed blob port keeps the development storage layout (10000/10001/10002 for UseDevelopmentStorage=true,
        # which names the queue at 10001): the CLI's `events` then reaches `make serve`'s queue.
        self.queue_port = port + 1 if port else free_port()
        self.table_port = port + 2 if port else free_port()
        self._may_move = port is None  # a probed port may be taken before Azurite binds it: then try another
        self._started = False  # once started, a restart keeps every port (connection strings name them)
        self.log_file = log_file
        self.debug_log = debug_log  # Azurite's --debug log: each request it served (tests/support/storage_commits.py)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.port, self.queue_port)

    def start(self, timeout: float = 30.0) -> Azurite:
        """Start on `port` (and `queue_port`); a port probed free but taken meanwhile (first start only) is replaced
        by another. A restart keeps its ports: clients hold connection strings naming them.
        """
        for _ in range(4):
            if self._start_once(timeout):
                self._may_move, self._started = False, True
                return self
            if self._started:
                break
            if self._may_move:  # probed ports: another try may move them all
                self.port, self.queue_port, self.table_port = free_port(), free_port(), free_port()
        raise RuntimeError(f"Azurite could not listen on 127.0.0.1:{self.port} (exit code {self._exit_code})")

    def _start_once(self, timeout: float) -> bool:
        """Whether this Azurite process itself now listens on the port (not another process that took it)."""
        self.location.mkdir(parents=True, exist_ok=True)
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                azurite_binary(), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
                "--tableHost", "127.0.0.1", "--tablePort", str(self.table_port),
                "--location", str(self.location), "--disableTelemetry", "--skipApiVersionCheck",
                *(() if self.access_log and self.log_file else ("--silent",)),
                *(["--debug", str(self.debug_log)] if self.debug_log else []),
            ],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self._exit_code: int | None = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._exit_code = self.proc.returncode  # e.g. EADDRINUSE: another process has the port
                self.proc = None
                return False
            if all(_listens(self.proc.pid, port) for port in (self.port, self.queue_port)):
                return True
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Azurite did not listen on 127.0.0.1:{self.port} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
