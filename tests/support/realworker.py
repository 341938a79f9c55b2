"""The REAL Azure Functions Python worker (../shared/realworker) running this app, for tests: index, load, invoke, logs.

`make setup` builds `.venv-worker` (Python 3.12, the worker's gRPC pins and the app's requirements). Without it or
without ../shared/realworker a test skips locally and fails under CI=true, so CI never silently skips.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import REPO, Azurite
from localbatch.process import find_ffmpeg

REALWORKER_DIR = REPO.parent / "shared" / "realworker"
WORKER_PYTHON = REPO / ".venv-worker" / "bin" / "python"
WORKER_SOURCE = REPO / ".venv-worker" / "worker434"  # the runnable copy `make setup` makes (realworker_setup.py)
DRIVER = Path(__file__).with_name("realworker_driver.py")


def require_real_worker() -> None:
    """Skip (locally) or fail (CI=true) when the real worker or its venv is missing."""
    stubs = WORKER_SOURCE / "azure_functions_worker" / "protos" / "FunctionRpc_pb2.py"
    needed = (WORKER_PYTHON, REALWORKER_DIR / "realhost.py", stubs)
    missing = [str(p) for p in needed if not p.exists()]
    if not missing:
        return
    message = f"the real Functions worker needs {', '.join(missing)} (run `make setup`; ../shared/realworker)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class RealWorker:
    """One real worker process hosting function_app.py (through the realhost harness in a Python 3.12 driver)."""

    def __init__(self, azurite: Azurite, state_dir: Path, settings: dict[str, str]) -> None:
        self.settings, self.state_dir = settings, state_dir
        self.env = {
            **os.environ,
            "PYTHONPATH": str(WORKER_SOURCE),
            "AzureWebJobsStorage": azurite.connection_string,
            "BATCH_GATEWAY": "local",
            "LOCAL_STATE_DIR": str(state_dir),
            "FFMPEG_PATH": find_ffmpeg(),
            **settings,
        }
        for name in ("VIRTUAL_ENV", "PYTHONHOME"):
            self.env.pop(name, None)
        self.worker_pid: int | None = None
        self.driver: subprocess.Popen[str] | None = None

    def start(self) -> RealWorker:
        argv = [str(WORKER_PYTHON), str(DRIVER), str(REALWORKER_DIR), str(WORKER_SOURCE), str(REPO)]
        self.driver = subprocess.Popen(argv, cwd=REPO, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True)
        return self

    def _ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.driver is not None and self.driver.stdin is not None and self.driver.stdout is not None
        self.driver.stdin.write(json.dumps(command) + "\n")
        self.driver.stdin.flush()
        line = self.driver.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker driver exited ({self.driver.poll()}) answering {command['op']}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def load(self) -> list[str]:
        """Init, index function_app.py and load every function, as the host does; returns the function names."""
        answer = self._ask({"op": "load"})
        self.worker_pid = answer["worker_pid"]
        return answer["functions"]

    def invoke(self, *calls: dict[str, str]) -> list[dict[str, str]]:
        """Send all these invocations at once ({"fn": "submit", "blob": name} or {"fn": "monitor"}); their results."""
        return self._ask({"op": "invoke", "calls": list(calls)})["results"]

    def logs(self) -> list[dict[str, str]]:
        """Every log record the worker forwarded to the host (what Application Insights would receive)."""
        return self._ask({"op": "logs"})["logs"]

    def stop(self) -> None:
        """Worker 4.34 ignores WorkerTerminate: kill it by its PID, then end the driver."""
        if self.worker_pid is not None:
            try:
                os.kill(self.worker_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.driver is not None:
            if self.driver.stdin is not None:
                self.driver.stdin.close()
            try:
                self.driver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait()

    def __enter__(self) -> RealWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
