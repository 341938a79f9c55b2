"""The whole local pipeline as one object: Azurite + the local host process; drop files, wait for outcomes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from devhost.azurite import REPO, Azurite, free_port
from localbatch.history import read_history
from mp3pipe.drop import Dropper
from mp3pipe.eventgrid import Notifier
from shared.adapters.storage import BlobStorage, connection_client
from shared.domain import naming
from shared.settings import DEFAULTS, Settings

# Listing 1,000 outputs costs ~0.19 CPU-s here and ~0.10 in Azurite (measured with 1,000 blobs): resting 4x a round,
# waiting took about a fifth of a core from the conversions it waits for; at 10x a tenth, and the last outcome is
# seen a few seconds later at most.
WAIT_DUTY = 10.0


@dataclass
class Outcome:
    """What became of one dropped file."""

    name: str
    etag: str
    kind: str  # "converted" | "failed" | "pending" | "superseded" (a newer version was dropped; no outcome due)
    output: str | None = None
    report: dict[str, Any] | None = None


class LocalPipeline:
    """Starts Azurite and `python -m devhost.host` with a private state folder; stops them on exit."""

    def __init__(self, state_dir: Path, *, settings: dict[str, str] | None = None, azurite: Azurite | None = None,
                 log_name: str = "host.log", events_port: int | None = None,
                 host_args: tuple[str, ...] = ()) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._own_azurite = azurite is None
        self.azurite = azurite or Azurite(self.state_dir / "azurite", log_file=self.state_dir / "azurite.log")
        self.settings = {"MONITOR_SCHEDULE": "*/2 * * * * *", **(settings or {})}
        self.log_path = self.state_dir / log_name
        self.host: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where the running host's part of the log starts
        self.events_port = events_port or free_port()  # the host's Event Grid webhook
        self.notifier = Notifier(self.state_dir)
        self.host_args = host_args
        self._service: tuple[str, BlobServiceClient] | None = None

    def value(self, key: str) -> str:
        return self.settings.get(key) or os.environ.get(key) or DEFAULTS[key]

    @property
    def input_container(self) -> str:
        return self.value("INPUT_CONTAINER")

    @property
    def output_container(self) -> str:
        return self.value("OUTPUT_CONTAINER")

    def env(self) -> dict[str, str]:
        return {
            # glibc gives each thread that allocates its own arena (up to 8 per core): the host's short-lived task
            # threads grew its RSS 70 -> 90 MiB over 1,000 files; with 2 arenas 65 -> 76 MiB (bench/many_files.py).
            "MALLOC_ARENA_MAX": "2",
            **os.environ,
            "LOCAL_STATE_DIR": str(self.state_dir),
            **self.settings,
            "AzureWebJobsStorage": self.azurite.connection_string,
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def service(self) -> BlobServiceClient:
        """One client (one connection pool) per storage endpoint, not a new one per call."""
        conn = self.azurite.connection_string
        if self._service is None or self._service[0] != conn:
            self._service = (conn, connection_client(conn))
        return self._service[1]

    def app_settings(self) -> Settings:
        """The settings the host runs with (environment over local.settings.json); raises SettingsError naming each
        bad setting."""
        from shared.settings_file import local_settings_values

        return Settings.from_env({**local_settings_values(), **self.env()})

    def check_settings(self) -> None:
        """Validate the settings the host will run with, before anything starts."""
        self.app_settings()

    def start(self) -> LocalPipeline:
        self.check_settings()
        if self._own_azurite and self.azurite.proc is None:
            self.azurite.start()
        for c in (self.input_container, self.output_container):
            try:
                self.service.create_container(c)
            except Exception:  # noqa: BLE001 - exists already
                pass
        self.start_host()
        self.wait_host_ready()
        return self

    def wait_host_ready(self, timeout: float = 60.0) -> bool:
        """Wait until the host listens for events (its discovery file names its pid), or has exited: a file dropped
        earlier has no one to take its event and waits for the host's background listing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.host is not None and self.host.poll() is None:
            info = self.notifier.host_info()
            if info and info.get("pid") == self.host.pid:
                return True
            time.sleep(0.05)
        return False

    def running_host(self) -> int | None:
        """The pid of a live local host (another `make serve` or `make run`) that owns this state folder, from its
        discovery file; None when there is none or its process is gone (a crash leaves a stale file)."""
        info = self.notifier.host_info() or {}
        pid = info.get("pid")
        if not isinstance(pid, int) or (self.host is not None and pid == self.host.pid):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid  # alive, another user's
        try:  # a reused pid is not our host
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return pid  # no /proc (macOS): trust the live pid
        return pid if b"devhost.host" in cmdline else None

    def start_host(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self._log_offset = log.tell()
        self.host = subprocess.Popen(
            [sys.executable, "-m", "devhost.host", "--port", str(self.events_port), *self.host_args], cwd=REPO,
            env=self.env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )

    def kill_host(self) -> None:
        """kill -9, as a crash would."""
        if self.host and self.host.poll() is None:
            self.host.send_signal(signal.SIGKILL)
            self.host.wait()

    def stop_host(self, timeout: float = 30.0) -> None:
        if self.host and self.host.poll() is None:
            self.host.terminate()
            try:
                self.host.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill_host()
        self.host = None

    def stop(self) -> None:
        self.stop_host()
        if self._own_azurite:
            self.azurite.stop()

    def __enter__(self) -> LocalPipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- using it ------------------------------------------------------------------------------------------------
    def clear_outcomes(self, names: list[str]) -> int:
        """Delete the MP3s and failure reports of these input names: one listing of the output container, a DELETE
        only for what is there; returns how many went."""
        wanted = set()
        for name in names:
            wanted.add(naming.report_name(name))
            try:
                wanted.add(naming.output_name(name))
            except naming.UnmappableName:
                pass
        out = self.service.get_container_client(self.output_container)
        present = [b for b in out.list_blob_names() if b in wanted]
        for path in present:
            try:
                out.delete_blob(path)
            except ResourceNotFoundError:
                pass
        return len(present)

    def drop(self, name: str, data: bytes | Path) -> str:
        """Upload one file into the input container and post its BlobCreated event to the host; returns its ETag."""
        return Dropper(BlobStorage(self.service), self.input_container, self.notifier).drop(name, data)

    def outcome(self, name: str, etag: str, present: dict[str, str] | None = None) -> Outcome:
        """The outcome of one blob version; `present` (output blob name -> ETag, one listing) saves requests.

        "converted" means this version's own task uploaded the MP3 that is there now (its ETag matches the upload
        the task recorded), not merely that an MP3 of that name exists: an older version's MP3 does not count.
        """
        out = self.service.get_container_client(self.output_container)
        for report_path in dict.fromkeys((naming.report_name(name), naming.unmapped_report_name(name))):
            if present is not None and report_path not in present:  # beside its MP3, or by hash when rejected
                continue
            try:
                report = json.loads(out.download_blob(report_path).readall())
                if report.get("etag") == etag:
                    return Outcome(name, etag, "failed", report=report)
            except ResourceNotFoundError:
                pass
        try:
            mp3 = naming.output_name(name)
        except naming.UnmappableName:
            return Outcome(name, etag, "pending")
        if present is not None:
            landed = present.get(mp3)
        else:
            try:
                landed = naming.clean_etag(out.get_blob_client(mp3).get_blob_properties().etag)
            except ResourceNotFoundError:
                landed = None
        if landed is not None and landed == self.uploaded_etag(name, etag, mp3):
            return Outcome(name, etag, "converted", output=mp3)
        if present is None and self.current_etag(name) not in (etag, None):
            return Outcome(name, etag, "superseded")
        return Outcome(name, etag, "pending")

    def current_etag(self, name: str) -> str | None:
        try:
            props = self.service.get_blob_client(self.input_container, name).get_blob_properties()
        except ResourceNotFoundError:
            return None
        return naming.clean_etag(props.etag)

    def uploaded_etag(self, name: str, etag: str, mp3: str) -> str | None:
        """The ETag of the MP3 this blob version's task last uploaded, from the local gateway's task history."""
        events = read_history(self.state_dir / "batch", self.value("BATCH_JOB_ID"), naming.task_id(name, etag))
        uploads = [e["etag"] for e in events if e["event"] == "upload" and e.get("path") == mp3]
        return uploads[-1] if uploads else None

    def wait(self, dropped: dict[str, str], timeout: float = 300.0, interval: float = 0.1,
             on_progress: Callable[[dict[str, Outcome]], None] | None = None) -> dict[str, Outcome]:
        """Wait until every dropped (name -> ETag) has an outcome or the timeout passes.

        Each round lists the output container once; it rests at least WAIT_DUTY times as long as that round took, so
        waiting for thousands of files does not take the cores the conversions need.
        """
        deadline = time.monotonic() + timeout
        outcomes = {name: Outcome(name, etag, "pending") for name, etag in dropped.items()}
        out = self.service.get_container_client(self.output_container)
        while True:
            began = time.monotonic()
            present = {b.name: naming.clean_etag(b.etag) for b in out.list_blobs()}
            for name, etag in dropped.items():
                if outcomes[name].kind == "pending":
                    outcomes[name] = self.outcome(name, etag, present)
            if on_progress is not None:
                on_progress(outcomes)
            if all(o.kind != "pending" for o in outcomes.values()) or time.monotonic() > deadline:
                return outcomes
            self.check_host()
            time.sleep(max(interval, WAIT_DUTY * (time.monotonic() - began)))

    def check_host(self) -> None:
        """Raise if the local host process has exited (instead of waiting for outcomes that cannot come)."""
        if self.host is not None and self.host.poll() is not None:
            said = self.host_error()
            raise RuntimeError(f"the local host exited with code {self.host.returncode}"
                               + (f":\n{said}\n" if said else "; ") + f"see {self.log_path}")

    def host_error(self) -> str:
        """What the host said about why it stopped: its settings error, else the last lines it logged."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_offset)
                text = fh.read()[-20000:].decode("utf-8", errors="replace")
        except OSError:
            return ""
        lines = text.splitlines()
        for i in range(len(lines) - 1, -1, -1):
            if lines[i].startswith("Invalid app settings"):
                block = [lines[i]]
                for line in lines[i + 1:]:
                    if not line.startswith("  - "):
                        break
                    block.append(line)
                return "\n".join(block)
        return "\n".join(lines[-5:])

    def download(self, container: str, name: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as fh:
            self.service.get_blob_client(container, name).download_blob(max_concurrency=4).readinto(fh)
        return dest
