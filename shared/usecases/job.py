"""The persistent job and its pool, as the pipeline asks Batch for them (created when missing)."""

from __future__ import annotations

from shared.ports.batch import PoolSpec
from shared.ports.deps import Deps
from shared.settings import Settings


def pool_spec(settings: Settings) -> PoolSpec:
    return PoolSpec(
        id=settings.pool_id,
        slots_per_node=settings.slots_per_node,
        initial_dedicated_nodes=settings.min_nodes,
        metadata=(("app", "mp3pipe"), ("job", settings.job_id)),
    )


def ensure_job(deps: Deps) -> None:
    deps.gateway.ensure_pool(pool_spec(deps.settings))
    deps.gateway.ensure_job(deps.settings.pool_id)
