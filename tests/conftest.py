"""Test fixtures: a real Azurite on a free loopback port, real ffmpeg media, the local pipeline."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devhost.azurite import REPO, Azurite
from devhost.local_pipeline import LocalPipeline
from devhost.media import make_mp4
from localbatch.gateway import LocalBatchGateway
from shared.adapters.storage import BlobStorage
from shared.ports.deps import Deps
from shared.settings import Settings
from shared.usecases.job import ensure_job
from tests.support.storage_commits import CommitLog
from tests.support.task_audit import TaskAudit, storage_problems, tasks_of

SHARED_SAMPLE = REPO.parent / "shared" / "media" / "LowPriVMs-4.mp4"


def isolated(**extra: str) -> dict[str, str]:
    """Settings with containers (and an outcome queue) of their own, so pipelines sharing one Azurite never see
    each other's files or events."""
    import uuid

    tag = uuid.uuid4().hex[:8]
    return {"INPUT_CONTAINER": f"in-{tag}", "OUTPUT_CONTAINER": f"out-{tag}", "STATE_CONTAINER": f"st-{tag}",
            "OUTCOME_QUEUE": f"ev-{tag}", "MONITOR_SCHEDULE": "*/1 * * * * *", **extra}


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.05, what: str = "") -> bool:
    """Poll `condition` until it is true (returns True); fail the test loudly if `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            name = what or getattr(condition, "__name__", "condition")
            raise AssertionError(f"waited {timeout} s and this never became true: {name}")
        time.sleep(interval)
    return True


def task_states(pipe: LocalPipeline) -> list[tuple[str, str, str | None]]:
    """(task id, state, result) of every task the pipeline's local gateway has."""
    return [row[:3] for row in pipe.task_rows()]


def task_pids(pipe: LocalPipeline, marker: bytes = b"") -> list[int]:
    """Processes working in this pipeline's task folders (with `marker` in their command line, if given)."""
    pids = []
    tasks = str(pipe.state_dir / "batch" / "tasks")
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.readlink(f"/proc/{entry}/cwd").startswith(tasks):
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if marker in fh.read():
                        pids.append(int(entry))
        except OSError:
            continue  # the process ended while we looked
    return pids


def ffmpeg_pids(pipe: LocalPipeline) -> list[int]:
    """ffmpeg conversions (libmp3lame) running in this pipeline's task folders."""
    return task_pids(pipe, b"libmp3lame")


def settled(pipe: LocalPipeline, timeout: float = 60.0) -> list[TaskAudit]:
    """The tasks once every one has completed and no task process is left (an output lands a moment before its
    task completes, as in Batch; a terminated task's process takes a moment to die)."""
    wait_until(lambda: all(t.state == "completed" for t in tasks_of(pipe)) and not task_pids(pipe), timeout,
               what="every task completed and no task process left")
    return tasks_of(pipe)


_COMMIT_LOGS: dict[Path, CommitLog] = {}


def storage_commits(azurite: Azurite) -> CommitLog:
    """What Azurite itself logged committing (it must run with a debug log): one reader per log, read as it grows."""
    assert azurite.debug_log is not None, "start this Azurite with debug_log=... to count commits on its side"
    return _COMMIT_LOGS.setdefault(azurite.debug_log, CommitLog(azurite.debug_log))


def assert_once_each(tasks: list[TaskAudit], azurite: Azurite, forgotten: frozenset[str] = frozenset()) -> None:
    """No task ran, launched its command or uploaded its MP3 more often than retries and requeues explain (or
    storage forgetting an MP3: `forgotten` ETags), and storage itself committed each MP3 once per successful run:
    no write the gateway's history leaves out."""
    problems = {f"{t.name} ({t.id})": t.problems(forgotten) for t in tasks if t.problems(forgotten)}
    log = storage_commits(azurite)
    for container in sorted({t.output_container for t in tasks if t.output_container}):
        mine = [t for t in tasks if t.output_container == container]
        problems |= {f"{container}/{path} (storage side)": p
                     for path, p in storage_problems(mine, log.commits(container), log.starts).items()}
    assert not problems, problems


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    folder = tmp_path_factory.mktemp("azurite")
    with Azurite(folder, log_file=folder / "azurite.log", debug_log=folder / "azurite-debug.log") as az:
        yield az


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generated test media (lavfi sources) and the tutorial's real sample when ../shared has it."""
    d = tmp_path_factory.mktemp("media")
    files = {
        "tone": make_mp4(d / "tone.mp4", 4.0, frequency=440),
        "tone_long": make_mp4(d / "tone_long.mp4", 7.0, frequency=880),
        "silent_video": make_mp4(d / "noaudio.mp4", 3.0, audio=False),
    }
    if SHARED_SAMPLE.exists():
        files["tutorial"] = Path(shutil.copyfile(SHARED_SAMPLE, d / "LowPriVMs-4.mp4"))
    return files


def _deps(azurite: Azurite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, run_tasks: bool) -> Deps:
    env = {"AzureWebJobsStorage": azurite.connection_string, "LOCAL_STATE_DIR": str(tmp_path), **isolated()}
    settings = Settings.from_env(env)
    storage = BlobStorage.from_settings(settings)
    storage.ensure_containers(settings.input_container, settings.output_container, settings.state_container)
    gateway = LocalBatchGateway(tmp_path, run_tasks=run_tasks)
    # The converter reads the connection setting from the environment, as in the Functions worker.
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    return Deps(settings=settings, storage=storage, gateway=gateway)


@pytest.fixture
def deps(azurite: Azurite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deps]:
    """In-process pipeline dependencies on real Azurite (own containers) and a local gateway that runs no tasks."""
    d = _deps(azurite, tmp_path, monkeypatch, run_tasks=False)
    yield d
    d.gateway.close()  # type: ignore[attr-defined]


@pytest.fixture
def running_deps(azurite: Azurite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deps]:
    """The same with a local gateway that runs its tasks (real ffmpeg), its pool and job in place."""
    d = _deps(azurite, tmp_path, monkeypatch, run_tasks=True)
    ensure_job(d)
    yield d
    d.gateway.close()  # type: ignore[attr-defined]
