"""After Azurite comes back from a crash: redo the conversions whose MP3 it forgot (what it had acknowledged in
its last seconds; it saves its metadata every 5 s), so every file still ends in an outcome."""

from __future__ import annotations

from devhost.local_pipeline import LocalPipeline
from localbatch.gateway import LocalBatchGateway
from shared.adapters.storage import BlobStorage
from shared.ports.deps import Deps
from shared.settings import Settings
from shared.settings_file import local_settings_values
from shared.usecases.reconcile import backfill


def redo_forgotten(pipe: LocalPipeline, since: float) -> list[str]:
    """Tasks that uploaded their MP3 after `since` (epoch seconds) and succeeded, but whose MP3 storage no longer
    has, leave the job, and one backfill pass submits their inputs again (reconcile's "recorded as submitted, but
    Batch has no such task"); it also records inputs whose record was forgotten. An MP3 deleted before `since`
    is left alone. Returns the input names redone."""
    settings = Settings.from_env({**local_settings_values(), **pipe.env()})
    storage = BlobStorage.from_settings(settings)
    present = {b.name for b in storage.list_blobs(settings.output_container)}
    lost = [t for t in pipe.tasks()
            if t.state == "completed" and t.result == "success" and t.output and t.output not in present
            and any(e["at"] >= since for e in t.mp3_uploads())]
    gateway = LocalBatchGateway.from_settings(settings, run_tasks=False)
    try:
        for task in lost:
            gateway.delete_task(task.id)
        backfill(Deps(settings=settings, storage=storage, gateway=gateway), settings.reconcile_batch)
    finally:
        gateway.close()
    return [t.name for t in lost]
