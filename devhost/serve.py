"""`make serve`: keep Azurite (default port 10000) and the local host running until Ctrl-C, for your own drops."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from devhost.azurite import REPO, Azurite
from devhost.local_pipeline import LocalPipeline
from shared.settings import SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Azurite and the local Functions stand-in until Ctrl-C.")
    parser.add_argument("--port", type=int, default=10000, help="Azurite blob port (10000 = UseDevelopmentStorage)")
    parser.add_argument("--state", default=str(REPO / ".state"), help="state folder")
    args = parser.parse_args(argv)
    azurite = Azurite(Path(args.state) / "azurite", port=args.port)
    pipe = LocalPipeline(args.state, azurite=azurite)
    try:
        pipe.check_settings()  # before anything starts
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    azurite.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with pipe:
            print(f"Azurite blob endpoint: http://127.0.0.1:{args.port}/devstoreaccount1")
            print(f"Drop .mp4 files into container '{pipe.input_container}'; MP3s and reports appear in "
                  f"'{pipe.output_container}'. Host log: {pipe.log_path}. Ctrl-C stops.")
            stop.wait()
    finally:
        azurite.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
