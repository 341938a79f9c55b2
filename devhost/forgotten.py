"""After Azurite comes back from a crash: redo the conversions whose MP3 it forgot (what it had acknowledged in
its last seconds; it saves its metadata every 5 s), so every file still ends in an outcome."""

from __future__ import annotations

from localbatch.gateway import LocalBatchGateway
from shared.bootstrap import tool_deps
from shared.domain import planning
from shared.settings import Settings
from shared.usecases.reconcile import backfill


def redo_forgotten(settings: Settings, since: float) -> list[str]:
    """Tasks that uploaded their MP3 after `since` (epoch seconds) and succeeded, but whose MP3 storage no longer
    has, leave the job, and one backfill pass submits their inputs again (file_life's "Batch has no task for it",
    whether the record says submitted or converted); it also records inputs whose record was forgotten. An MP3
    deleted before `since` is left alone. Returns the input names redone."""
    deps = tool_deps(settings)
    gateway = deps.gateway
    if not isinstance(gateway, LocalBatchGateway):
        return []  # only the local gateway runs under `make serve`, and only it keeps each task's uploads
    try:
        present = {b.name for b in deps.storage.list_blobs(settings.output_container)}
        lost = [spec for spec, path in gateway.success_uploads_since(since) if path not in present]
        for spec in lost:
            gateway.delete_task(spec.id)
        backfill(deps, settings.reconcile_batch)
    finally:
        gateway.close()
    return [spec.env().get(planning.ENV_INPUT_BLOB, spec.id) for spec in lost]
