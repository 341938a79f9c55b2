"""Wiring: settings -> storage and the chosen Batch adapter, built once per process."""

from __future__ import annotations

import functools
import os

from shared.batch.gateway import BatchGateway
from shared.pipeline import Deps
from shared.settings import Settings
from shared.storage import Storage


def build_gateway(settings: Settings) -> BatchGateway:
    """The one place that chooses the Batch adapter (BATCH_GATEWAY=local|azure)."""
    if settings.batch_gateway == "azure":
        from shared.batch.azure import AzureBatchGateway

        return AzureBatchGateway.from_settings(settings)
    from shared.batch.local import LocalBatchGateway

    return LocalBatchGateway.from_settings(settings)


@functools.cache
def deps() -> Deps:
    """The process-wide dependencies the functions use."""
    settings = Settings.from_env()
    storage = Storage.from_settings(settings)
    if os.environ.get("MP3PIPE_SKIP_CONTAINER_CHECK") != "1":
        storage.ensure_containers(settings.input_container, settings.output_container, settings.state_container)
    return Deps(settings=settings, storage=storage, gateway=build_gateway(settings))
