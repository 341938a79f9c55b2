"""One monitor run: read the state, scale the pool, record outcomes, clean up, renew URLs, write the state back."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from shared.domain.monitor_state import MONITOR_STATE_BLOB, MonitorState
from shared.domain.scaling import (
    Demand,
    ScalingSettings,
    decide,
    learn_arrivals,
    observe,
    plan_after_resize_errors,
    typical_gap,
    work_seen,
)
from shared.events import event
from shared.ports.batch import GatewayError, JobNotFound, PoolBusy, PoolState
from shared.ports.deps import Deps
from shared.run_deadline import Deadline
from shared.settings import Settings
from shared.usecases import notify
from shared.usecases.job import pool_spec
from shared.usecases.monitor import cleanup, renewal
from shared.usecases.monitor.outcomes import record_outcomes
from shared.usecases.monitor.pool_health import note_resize_errors, remove_broken_nodes


@dataclass(frozen=True)
class TickResult:
    active: int
    running: int
    target_nodes: int
    resized: bool
    reason: str
    reported: tuple[str, ...]


def scaling_settings(s: Settings) -> ScalingSettings:
    return ScalingSettings(
        min_nodes=s.min_nodes, max_nodes=s.max_nodes, slots_per_node=s.slots_per_node, spot_share=s.spot_share,
        dedicated_floor=s.dedicated_floor, idle_grace_seconds=s.idle_grace_seconds,
    )


def monitor_tick(deps: Deps, deadline: Deadline | None = None) -> TickResult:
    """Ensure pool and job, scale the pool to the work, record the outcome of each newly finished task (converted,
    or failed with a failure report), and delete tasks whose outcome is recorded. Batch requests on a steady run:
    pool, node counts, task counts; one listing more when tasks finished since the last run. The outcomes,
    deletes and renewals stop at the run's deadline (half the function timeout); the state keeps what was done."""
    s = deps.settings
    gw = deps.gateway
    deadline = deadline or Deadline.start(deps.clock)
    now = deps.clock()
    state = MonitorState.from_json(deps.storage.get_json(s.state_container, MONITOR_STATE_BLOB))
    as_read = state.copy()

    pool = gw.pool_state()
    if pool is None:
        try:
            gw.ensure_pool(pool_spec(s))
        except GatewayError as exc:  # e.g. the pool is still being deleted: the next run creates it
            event("pool-not-created", logging.ERROR, error=str(exc))
        pool = gw.pool_state()
    try:
        counts = gw.task_counts()
    except JobNotFound:
        gw.ensure_job(s.pool_id)
        counts = gw.task_counts()

    demand = observe(counts.active, counts.running, counts.completed, state.completed, counts.active_slots,
                     counts.running_slots)
    last_work = work_seen(demand, now, state.last_work_seen)
    known = counts.active + counts.running + counts.completed
    state.arrivals = tuple(learn_arrivals(list(state.arrivals), now, known - (known if state.known is None
                                                                               else state.known)))
    resized = False
    reason = "no pool"
    target = 0
    if pool is not None and pool.deleting:
        reason = "pool is being deleted; it is created again once it is gone"
    elif pool is not None:
        reason, target, resized = _scale(deps, pool, demand, now, last_work, state)

    # The completed count grows only when a task finishes (state.completed is last run's count less the tasks it
    # deleted), so an unchanged count means nothing to record; a count that lags a completion by a run delays its
    # outcome by a run (the watermark loses nothing).
    resent = 0 if deadline.passed() else notify.resend_held(deps, deadline)  # what a crash or a down queue held
    reported: list[str] = []
    if counts.completed > (state.completed or 0) or not state.outcomes_listed:
        reported = record_outcomes(deps, state, deadline)
    deleted = cleanup.delete_finished(deps, state, counts.completed, now, run_deadline=deadline)
    renewed = renewal.renew_old_urls(deps, state, counts.active, now, deadline)
    state.last_work_seen = last_work
    state.completed = max(counts.completed - deleted, 0)
    state.known = max(known - deleted, 0)
    if state != as_read or state.heartbeat_due(now):  # an idle run writes only its heartbeat, every 5 minutes
        state.ran_at = now
        deps.storage.put_json(s.state_container, MONITOR_STATE_BLOB, state.to_json())
    event(
        "monitor", active=counts.active, running=counts.running, completed=counts.completed,
        failed=counts.failed, target_nodes=target, resized=resized, reason=reason, reported=len(reported),
        deleted=deleted, renewed=renewed, resent=resent,
    )
    return TickResult(counts.active, counts.running, target, resized, reason, tuple(reported))


def _scale(deps: Deps, pool: PoolState, demand: Demand, now: float, last_work: float | None,
           state: MonitorState) -> tuple[str, int, bool]:
    """One scaling step: broken nodes out, a blocking shrink stopped, resize errors retried, else resize."""
    gw = deps.gateway
    note_resize_errors(pool, state)
    if remove_broken_nodes(deps, pool, state):
        return f"{pool.broken} broken node(s) removed; resize next run", pool.target_dedicated + pool.target_spot, False
    settings = dataclasses.replace(scaling_settings(deps.settings), slots_per_node=pool.slots_per_node)
    current, target_now = pool.current_dedicated + pool.current_spot, pool.target_dedicated + pool.target_spot
    resend = False
    if pool.allocation_state == "steady" and not pool.auto_scale:
        plan = plan_after_resize_errors(tuple(e.code for e in pool.resize_errors), current, target_now, now,
                                        state.resize_retry)
        state.resize_retry = plan.retry
        resend = plan.resend
        if plan.cap is not None:
            settings = dataclasses.replace(settings, max_nodes=max(plan.cap, 0), min_nodes=min(settings.min_nodes,
                                                                                              plan.cap))
    arrivals = list(state.arrivals)
    decision = decide(demand, pool, settings, now, last_work, typical_gap(arrivals), arrivals[-1] if arrivals else None)
    reason, target = decision.reason, decision.dedicated + decision.spot
    try:
        if decision.stop_resize:
            gw.stop_resize()
            event("pool-resize-stopped", reason=decision.reason)
        elif decision.resize or resend:
            if resend:
                reason += f" (resize retried after: {'; '.join(e.code for e in pool.resize_errors)})"
            gw.resize(decision.dedicated, decision.spot)
            return reason, target, True
    except PoolBusy as exc:
        reason += f" (resize deferred: {exc})"
    return reason, target, False
