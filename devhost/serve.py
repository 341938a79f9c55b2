"""`make serve`: keep Azurite (default port 10000) and the local host running until Ctrl-C, for your own drops.

Both are supervised: when one dies it is started again (Azurite on the same port with its data folder) after a
backoff, with one line saying so; receipts, the task table and Azurite's data make a restart safe. If one keeps
dying (more than --max-restarts times within a minute) the command stops with a message saying which and why.
Ctrl-C stops everything within a few seconds, whatever state the services are in.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from devhost.azurite import REPO, SAVE_SECONDS, Azurite
from devhost.local_pipeline import LocalPipeline
from devhost.outcome_feed import OutcomeFeed
from shared.domain import naming
from shared.settings import SettingsError

WINDOW = 60.0  # deaths counted over this many seconds
STOP_GRACE = 3.0  # seconds a service gets to stop on Ctrl-C before it is killed
# MP3s stored this long before an Azurite restart may be ones it forgot: its save window, the restart backoff
# (at most 30 s) and a late save on a busy machine.
FORGET_LOOKBACK = SAVE_SECONDS + 30.0 + 25.0


def _how(code: int | None) -> str:
    if code is None:
        return "did not start"
    return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"


class Service:
    """One supervised process: how to see it died, restart it, and stop it."""

    def __init__(self, label: str, alive: Callable[[], bool], exit_code: Callable[[], int | None],
                 start: Callable[[], None], detail: Callable[[], str]) -> None:
        self.label, self.alive, self.exit_code, self.start, self.detail = label, alive, exit_code, start, detail
        self.deaths: deque[float] = deque()
        self.restarts = 0


class Supervisor:
    """Restarts Azurite or the local host when either dies, with backoff; gives up on one that keeps dying."""

    def __init__(self, pipe: LocalPipeline, azurite: Azurite, *, max_restarts: int = 5,
                 say: Callable[[str], None] = print) -> None:
        self.pipe, self.azurite, self.max_restarts, self.say = pipe, azurite, max_restarts, say
        self.services = [
            Service("Azurite", lambda: azurite.proc is not None and azurite.proc.poll() is None,
                    lambda: azurite.proc.returncode if azurite.proc else None, self._start_azurite,
                    lambda: f"on 127.0.0.1:{azurite.port} with its data in {azurite.location}"),
            Service("the local host", lambda: pipe.host is not None and pipe.host.poll() is None,
                    lambda: pipe.host.returncode if pipe.host else None, pipe.start_host,
                    lambda: f"(log: {pipe.log_path})"),
        ]

    def _start_azurite(self) -> None:
        self.azurite.proc = None
        self.azurite.start()
        # Azurite saves its metadata every 5 s: a kill -9 can lose what it took in just before, containers
        # included. Make sure the app's containers exist again (blobs it lost are gone; it is an emulator).
        from devhost.host import RECEIPTS_CONTAINER
        from shared.adapters.storage import BlobStorage

        BlobStorage(self.pipe.service).ensure_containers(self.pipe.input_container, self.pipe.output_container,
                                                     self.pipe.value("STATE_CONTAINER"), RECEIPTS_CONTAINER)
        # MP3s it forgot are converted again; inputs it forgot are gone (dropped in its last seconds: drop again).
        from devhost.forgotten import redo_forgotten

        redone = redo_forgotten(self.pipe.app_settings(), since=time.time() - FORGET_LOOKBACK)
        if redone:
            self.say(f"Azurite forgot the MP3 of {len(redone)} file(s) it had stored just before it died; "
                     "converting them again")

    def run(self, stop: threading.Event) -> int:
        """Watch until `stop` is set (0) or a service keeps dying (1)."""
        while not stop.wait(0.2):
            for svc in self.services:
                if svc.alive():
                    continue
                verdict = self._revive(svc, stop)
                if verdict is not None:
                    return verdict
        return 0

    def _revive(self, svc: Service, stop: threading.Event) -> int | None:
        while not stop.is_set():
            now = time.monotonic()
            code = svc.exit_code()
            svc.deaths.append(now)
            while svc.deaths and svc.deaths[0] < now - WINDOW:
                svc.deaths.popleft()
            if len(svc.deaths) > self.max_restarts:
                why = self.pipe.host_error() if svc.label == "the local host" else self._azurite_words()
                self.say(f"{svc.label} keeps dying ({len(svc.deaths)} times within {WINDOW:.0f} s, last: "
                         f"{_how(code)}); stopping.{chr(10) + why if why else ''}")
                return 1
            delay = min(30.0, 0.5 * 2 ** (len(svc.deaths) - 1))
            if stop.wait(delay):
                return None
            svc.restarts += 1
            try:
                svc.start()
            except Exception as exc:  # noqa: BLE001 - counts as another death; the loop decides
                self.say(f"{svc.label} {_how(code)}; restarting it failed: {exc}")
                continue
            self.say(f"{svc.label} {_how(code)}; restarted it after {delay:g} s {svc.detail()} "
                     f"(restart {svc.restarts})")
            return None
        return None

    def _azurite_words(self) -> str:
        log = self.azurite.log_file
        if log is None or not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-5:])

    def shutdown(self) -> None:
        """Stop the host, then Azurite, each within STOP_GRACE seconds (killed after that)."""
        self.pipe.stop_host(timeout=STOP_GRACE)
        self.azurite.stop(timeout=STOP_GRACE)


def _follow(feed: OutcomeFeed, stop: threading.Event) -> None:
    """One line per outcome the host logs, until Ctrl-C."""
    while not stop.wait(0.5):
        feed.poll()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Azurite and the local Functions stand-in until Ctrl-C.")
    parser.add_argument("--port", type=int, default=10000, help="Azurite blob port (10000 = UseDevelopmentStorage)")
    parser.add_argument("--events-port", type=int, default=7071,
                        help="the local host's Event Grid webhook port (7071, as `func start`)")
    parser.add_argument("--state", default=str(REPO / ".state"), help="state folder")
    parser.add_argument("--max-restarts", type=int, default=5, help="restarts within a minute before giving up")
    args = parser.parse_args(argv)
    state = Path(args.state)
    azurite = Azurite(state / "azurite", port=args.port, log_file=state / "azurite.log")
    pipe = LocalPipeline(state, azurite=azurite, events_port=args.events_port)
    try:
        pipe.check_settings()  # before anything starts
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    supervisor = Supervisor(pipe, azurite, max_restarts=args.max_restarts,
                            say=lambda line: print(line, flush=True))
    feed = OutcomeFeed(pipe.log_path, pipe.state_dir / "batch", pipe.value("BATCH_JOB_ID"),
                       say=lambda line: print(line, flush=True))
    threading.Thread(target=_follow, args=(feed, stop), daemon=True, name="outcomes").start()
    try:
        azurite.start()
        pipe.start()
        print(f"Azurite blob endpoint: http://127.0.0.1:{args.port}/devstoreaccount1", flush=True)
        print(f"Drop inputs ({' '.join(naming.INPUT_SUFFIXES)}) into container '{pipe.input_container}' (e.g. "
              f"`.venv/bin/python -m mp3pipe drop FOLDER`); MP3s and reports appear in '{pipe.output_container}', "
              f"one line here per outcome. Host log: {pipe.log_path}. Ctrl-C stops.", flush=True)
        code = supervisor.run(stop)
    except RuntimeError as exc:  # Azurite would not start
        print(f"could not start: {exc}", file=sys.stderr)
        code = 1
    finally:
        print("stopping...", flush=True)
        supervisor.shutdown()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
