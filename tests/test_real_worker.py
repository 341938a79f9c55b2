"""The app under the REAL Azure Functions Python worker (4.34, Python 3.12, as Azure runs it): index, load, invoke."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devhost.azurite import Azurite
from tests.conftest import isolated
from tests.support.realworker import RealWorker, require_real_worker


@pytest.fixture
def real_worker(azurite: Azurite, tmp_path: Path) -> Iterator[Callable[..., RealWorker]]:
    """Starts real workers on the test Azurite (containers of their own) and the local gateway; stops each by PID."""
    require_real_worker()
    started: list[RealWorker] = []

    def start(**settings: str) -> RealWorker:
        worker = RealWorker(azurite, tmp_path / f"state{len(started)}", isolated(**settings)).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def test_the_worker_indexes_and_loads_the_three_functions(real_worker: Callable[..., RealWorker]) -> None:
    worker = real_worker()
    assert worker.load() == ["monitor", "reconcile", "submit"]
    assert [r["status"] for r in worker.invoke({"fn": "monitor"})] == ["Success"]
