"""The fast tier's world: the use-cases on the in-memory Storage and Batch fakes, with one clock the test moves."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.domain import naming
from shared.ports.deps import Deps
from shared.settings import Settings
from shared.usecases.submit import SubmitResult, submit_blob
from tests.support.fakes.batch import MemoryBatch
from tests.support.fakes.clock import Clock
from tests.support.fakes.storage import MemoryStorage

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
FAST_DIR = Path(__file__).parent
STDERR = "Stream map '0:a:0' matches no streams.\nTo ignore this, add a trailing '?' to the map.\n"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/fast is in the fast tier."""
    for item in items:
        if item.path.is_relative_to(FAST_DIR):
            item.add_marker(pytest.mark.fast)


@dataclass
class World:
    """What a user of the pipeline sees and does: input, output and state containers, the job, the clock."""

    deps: Deps
    storage: MemoryStorage
    batch: MemoryBatch
    clock: Clock

    @property
    def settings(self) -> Settings:
        return self.deps.settings

    def drop(self, name: str, data: bytes = b"\x00\x00\x00\x18ftypmp42") -> str:
        """A file lands in the input container (no trigger fires); returns its version's ETag, cleaned."""
        return naming.clean_etag(self.storage.upload_bytes(self.settings.input_container, name, data))

    def submit(self, name: str) -> SubmitResult:
        """What the blob trigger does for the input's current version."""
        return submit_blob(self.storage.blob(self.settings.input_container, name), self.deps)

    def dropped(self, *names: str) -> list[str]:
        """Files land and their triggers submit them; returns their task ids."""
        ids = []
        for name in names:
            self.drop(name)
            result = self.submit(name)
            assert result.status == "submitted" and result.task_id
            ids.append(result.task_id)
        return ids

    def convert(self, name: str, task_id: str) -> None:
        """What Batch does when ffmpeg succeeds: the MP3 uploaded, then the task completed."""
        self.storage.upload_bytes(self.settings.output_container, naming.output_name(name), b"ID3mp3")
        self.batch.complete(task_id, ok=True)

    def fail(self, task_id: str) -> None:
        """What Batch does when ffmpeg fails every try: stderr uploaded on taskfailure, the task failed."""
        self.storage.upload_bytes(self.settings.output_container, f"{naming.logs_folder(task_id)}/stderr.txt",
                                  STDERR.encode())
        self.batch.complete(task_id, ok=False, exit_code=1)

    def outputs(self) -> list[str]:
        return [b.name for b in self.storage.list_blobs(self.settings.output_container)]


@pytest.fixture
def world() -> World:
    settings = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "BATCH_MIN_NODES": "0",
                                  "BATCH_MAX_NODES": "10", "BATCH_SLOTS_PER_NODE": "1"})
    clock = Clock(START)
    storage, batch = MemoryStorage(clock), MemoryBatch(clock)
    storage.ensure_containers(settings.input_container, settings.output_container, settings.state_container)
    return World(Deps(settings=settings, storage=storage, gateway=batch, clock=clock), storage, batch, clock)
