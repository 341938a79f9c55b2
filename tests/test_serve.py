"""`make serve` supervises its services: kill -9 the host or Azurite and the next file still converts, no file
dropped before the kill is lost, Ctrl-C stops everything within seconds, and a service that keeps dying stops
the command with a message saying which."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from devhost.azurite import REPO, Azurite, free_port
from devhost.local_pipeline import LocalPipeline
from tests.conftest import isolated, wait_until


class Serve:
    """`python -m devhost.serve` on free ports, its output collected line by line."""

    def __init__(self, state: Path, *args: str) -> None:
        self.state, self.port, self.events_port = state, free_port(), free_port()
        settings = isolated()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devhost.serve", "--port", str(self.port), "--events-port", str(self.events_port),
             "--state", str(state), *args],
            cwd=REPO, env={**os.environ, **settings}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        # A client of the served pipeline: drops files (with events) and reads outcomes; it starts nothing.
        self.client = LocalPipeline(state, azurite=Azurite(state / "azurite", port=self.port),
                                    events_port=self.events_port)
        self.client.settings = settings

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    def child(self, marker: str) -> int:
        """The pid of the serve process's child whose command line has `marker`."""
        pid = self.proc.pid
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for kid in kids:
            try:
                if marker in Path(f"/proc/{kid}/cmdline").read_bytes().decode(errors="replace"):
                    return int(kid)
            except OSError:
                continue
        raise LookupError(f"no child with {marker!r}: {kids}")

    def stop(self) -> float:
        """Ctrl-C; seconds until the command exited."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)
        return time.monotonic() - t0


@pytest.fixture
def serve(tmp_path):
    s = Serve(tmp_path / "state")
    try:
        assert wait_until(lambda: s.said("Ctrl-C stops") or s.proc.poll() is not None, 120), s.lines
        assert s.proc.poll() is None, s.lines
        yield s
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
        for marker in ("devhost.host", "azurite"):
            _kill_leftovers(tmp_path, marker)


def _kill_leftovers(tmp_path: Path, marker: str) -> None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
                env = Path(f"/proc/{entry}/environ").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if marker in cmd and (str(tmp_path) in cmd or str(tmp_path) in env):
                os.kill(int(entry), signal.SIGKILL)


def _outcomes(s: Serve, etags: dict[str, str]) -> dict[str, str]:
    return {n: o.kind for n, o in s.client.wait(etags, timeout=180).items()}


def test_killed_services_are_restarted_and_no_dropped_file_is_lost(serve, media):
    s = serve
    first = {"before/host-kill.mp4": s.client.drop("before/host-kill.mp4", media["tone"])}
    os.kill(s.child("devhost.host"), signal.SIGKILL)
    first["during/host-down.mp4"] = s.client.drop("during/host-down.mp4", media["tone"])  # its event is lost
    assert wait_until(lambda: s.said("the local host was killed by signal 9; restarted it"), 60), s.lines
    first["after/host-restart.mp4"] = s.client.drop("after/host-restart.mp4", media["tone"])
    assert _outcomes(s, first) == {n: "converted" for n in first}

    second = {"before/azurite-kill.mp4": s.client.drop("before/azurite-kill.mp4", media["tone_long"])}
    time.sleep(6)  # Azurite saves its metadata every 5 s: what it took in just before a kill -9 may be gone
    os.kill(s.child("azurite"), signal.SIGKILL)
    assert wait_until(lambda: s.said("Azurite was killed by signal 9; restarted it"), 60), s.lines
    assert s.said(f"on 127.0.0.1:{s.port} with its data")
    second["after/azurite-restart.mp4"] = s.client.drop("after/azurite-restart.mp4", media["tone"])
    assert _outcomes(s, {**first, **second}) == {n: "converted" for n in {**first, **second}}

    # Azurite dead, the host retrying storage: Ctrl-C still stops everything within seconds.
    os.kill(s.child("azurite"), signal.SIGKILL)
    took = s.stop()
    assert s.proc.returncode == 0 and took < 15, (took, s.lines)
    assert not Path(f"/proc/{s.proc.pid}").exists() or s.proc.poll() is not None


def test_ctrl_c_stops_everything_within_seconds(serve):
    host, azurite = serve.child("devhost.host"), serve.child("azurite")
    took = serve.stop()
    assert serve.proc.returncode == 0 and took < 15, (took, serve.lines)
    assert wait_until(lambda: not Path(f"/proc/{host}").exists() and not Path(f"/proc/{azurite}").exists(), 5)


def test_a_service_that_keeps_dying_stops_the_command_with_a_clear_message(tmp_path):
    """With the default (README: more than 5 times in a minute), restarted after a doubling backoff each time."""
    s = Serve(tmp_path / "state")
    with socket.socket() as squatter:  # the host's webhook port is taken: the host cannot start
        squatter.bind(("127.0.0.1", s.events_port))
        squatter.listen()
        try:
            s.proc.wait(timeout=180)
        finally:
            if s.proc.poll() is None:
                s.proc.kill()
            _kill_leftovers(tmp_path, "azurite")
    time.sleep(0.2)
    out = "\n".join(s.lines)
    assert s.proc.returncode == 1, out
    assert "the local host keeps dying (6 times within 60 s" in out
    assert re.findall(r"the local host [^;]*; restarted it after ([\d.]+) s", out) == ["0.5", "1", "2", "4", "8"]
    assert f"cannot listen on 127.0.0.1:{s.events_port}" in out


def test_serve_prints_one_line_per_outcome(serve, media):
    s = serve
    s.client.drop("talks/good.mp4", media["tone"])
    s.client.drop("broken.mp4", b"not a video at all")
    s.client.drop("talks/good.mov", media["tone"])  # maps to the MP3 good.mp4 owns: rejected
    converted = re.compile(r"converted talks/good\.mp4 -> talks/good\.mp3 \([\d.]+ KB, [\d.]+ s\)")
    assert wait_until(lambda: s.said("failed broken.mp4: the input is not an MP4") and s.said("rejected talks/good.mov")
                      and any(converted.fullmatch(line) for line in s.lines), 120), s.lines
    assert s.said("talks/good.mp4") == 2  # rejected good.mov names its owner; converted once, said once
    # The CLI reads the same outcomes from the queue: Azurite's queue sits beside its blob port, as
    # UseDevelopmentStorage=true expects of `make serve` (10000, 10001).
    events = subprocess.run([sys.executable, "-m", "mp3pipe", "events"], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, **s.client.env(), "COLUMNS": "200"}, timeout=60)
    assert events.returncode == 0, events.stdout + events.stderr
    assert "converted" in events.stdout and "talks/good.mp4" in events.stdout, events.stdout


def test_make_run_refuses_the_state_folder_of_a_running_serve(serve, media, tmp_path):
    s = serve
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.mp4").write_bytes(media["tone"].read_bytes())
    result = subprocess.run([sys.executable, "-m", "devhost.run", "--input", str(src), "--output",
                             str(tmp_path / "out"), "--state", str(s.state)], cwd=REPO, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert result.returncode == 2, result.stdout + result.stderr
    said = result.stdout.strip()
    assert said.startswith("a local pipeline (make serve, pid ") and said.count("\n") == 0, said
    assert "mp3pipe drop FOLDER" in said and "STATE=" in said
    # The running service is untouched: its discovery file stays, and a drop is taken by its event at once.
    assert (s.state / "host.json").exists()
    etag = s.client.drop("after-run.mp4", media["tone"])
    assert {n: o.kind for n, o in s.client.wait({"after-run.mp4": etag}, timeout=30).items()} == {
        "after-run.mp4": "converted"}
