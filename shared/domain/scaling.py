"""The pool scaling policy: task counts + pool state + settings -> target node counts (pure, no I/O).

The rules, in order, and why each is so: docs/scaling.md. Tuning of the defaults: bench/scaling.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.ports.batch import PoolState


@dataclass(frozen=True)
class ScalingSettings:
    min_nodes: int = 0
    max_nodes: int = 10
    slots_per_node: int = 1
    spot_share: float = 0.0  # 0..1: the share of nodes that may be Spot
    dedicated_floor: int = 0  # dedicated nodes kept whenever the pool has nodes
    idle_grace_seconds: float = 300.0  # how long to stay up after the last work was seen
    max_step: int = 1000  # most nodes added or removed in one decision
    shrink_headroom: int = 0  # idle nodes kept on top of demand while there is work
    grow_queue_depth: float = 2.0  # grow only past this many tasks (running + queued) per slot; 1 = a slot per task
    node_start_seconds: float = 330.0  # a new node's allocation + start task: what an idle node saves a file
    max_hold_seconds: float | None = None  # longest a lone file waits to share a node start; None = node_start_seconds


@dataclass(frozen=True)
class Demand:
    active: int
    running: int
    completed_since_last: int = 0  # tasks finished since the previous tick: work was seen even if none is left
    active_slots: int | None = None  # the slots the queued tasks ask for (None: a slot each)
    running_slots: int | None = None  # the slots the running tasks hold (None: a slot each)

    def slots(self) -> tuple[int, int]:
        """(queued, running) in slots: what fills the nodes."""
        active = self.active if self.active_slots is None else self.active_slots
        running = self.running if self.running_slots is None else self.running_slots
        return max(active, 0), max(running, 0)


@dataclass(frozen=True)
class Decision:
    dedicated: int
    spot: int
    resize: bool
    reason: str
    stop_resize: bool = False  # stop the shrink in progress: demand wants more than its target


def observe(active: int, running: int, completed_total: int, completed_before: int | None,
            active_slots: int | None = None, running_slots: int | None = None) -> Demand:
    """This tick's demand from the job's task counts and slot counts; `completed_before` is the cumulative count the
    previous tick saw (None on the first tick), so tasks that started and ended between two ticks still count as
    work."""
    before = completed_total if completed_before is None else completed_before
    return Demand(active, running, max(0, completed_total - before), active_slots, running_slots)


def work_seen(demand: Demand, now: float, last_work_seen: float | None) -> float | None:
    """When work was last seen, this tick included: tasks queued, running, or completed since the previous tick."""
    if max(demand.active, 0) + max(demand.running, 0) + max(demand.completed_since_last, 0) > 0:
        return now if last_work_seen is None else max(last_work_seen, now)
    return last_work_seen


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def split(total: int, settings: ScalingSettings, preempted: int = 0) -> tuple[int, int]:
    """Split a node total into (dedicated, Spot): Spot up to the share, the dedicated floor kept,
    and preempted Spot nodes made up for with dedicated ones while that stays within max_nodes."""
    if total <= 0:
        return 0, 0
    floor = min(max(settings.dedicated_floor, 0), total)
    share = min(max(settings.spot_share, 0.0), 1.0)
    spot = min(math.floor(total * share + 1e-9), total - floor)
    dedicated = total - spot
    lost = min(max(preempted, 0), spot)
    room = max(settings.max_nodes - total, 0)
    return dedicated + min(lost, room), spot


def decide(
    demand: Demand,
    pool: PoolState,
    settings: ScalingSettings,
    now: float,
    last_work_seen: float | None,
    arrival_gap: float | None = None,
    last_arrival: float | None = None,
) -> Decision:
    """The target (dedicated, Spot) for this tick and a one-line reason to log.

    `arrival_gap` is the typical gap between arrivals and `last_arrival` when new tasks were last seen
    (`typical_gap` and the newest of `learn_arrivals`), both None until learnt."""
    keep_d, keep_s = pool.target_dedicated, pool.target_spot
    if pool.auto_scale:
        return Decision(keep_d, keep_s, False, "pool uses autoscale; left alone")
    if pool.allocation_state != "steady":
        target, current_nodes = keep_d + keep_s, pool.current_dedicated + pool.current_spot
        if pool.allocation_state == "resizing" and target < current_nodes:
            wanted = decide(demand, PoolState("steady", pool.current_dedicated, pool.current_spot, keep_d, keep_s,
                                             pool.preempted), settings, now, last_work_seen, arrival_gap,
                             last_arrival)
            if wanted.dedicated + wanted.spot > target:
                return Decision(keep_d, keep_s, False, f"pool is resizing (shrinking to {target}) while demand wants "
                                f"{wanted.dedicated + wanted.spot}: stop the resize", stop_resize=True)
        return Decision(keep_d, keep_s, False, f"pool is {pool.allocation_state}; no resize")

    slots = max(settings.slots_per_node, 1)
    low = max(settings.min_nodes, 0)
    high = max(settings.max_nodes, low)
    active, running = max(demand.active, 0), max(demand.running, 0)
    work = active + running
    active_slots, running_slots = demand.slots()  # a task fills the slots it asks for, not one
    last_work_seen = work_seen(demand, now, last_work_seen)
    needed = math.ceil((active_slots + running_slots) / slots)
    busy = math.ceil(running_slots / slots)  # nodes that running tasks occupy; never shrink below these
    current = keep_d + keep_s
    counts = f"active={active} running={running}"
    if (active_slots, running_slots) != (active, running):
        counts += f" (slots {active_slots}+{running_slots})"

    depth = max(settings.grow_queue_depth, 1.0)
    grow = math.ceil((active_slots + running_slots) / (slots * depth))
    idle_for = None if last_work_seen is None else now - last_work_seen
    # When the next file is due: a gap after the newest arrival (or, not knowing that, after the last work seen).
    since = idle_for if last_arrival is None or last_work_seen is None else now - min(last_arrival, last_work_seen)
    due_in = None if arrival_gap is None or since is None else arrival_gap - since
    sparse = work == 0 and due_in is not None and due_in > settings.node_start_seconds
    empty = current == 0 and pool.current_dedicated + pool.current_spot == 0
    hold = hold_seconds(demand, empty and low == 0, settings, now, arrival_gap, last_arrival)
    if hold is not None:
        return Decision(keep_d, keep_s, False, f"{counts} -> one file on an empty pool, the next expected in "
                        f"~{hold + settings.node_start_seconds:.0f}s: hold {hold:.0f}s so both share one node start")
    if sparse and current > low:
        wanted, why = low, f"idle; next file expected in ~{due_in:.0f}s, later than a node start"
    elif work == 0 and idle_for is not None and idle_for < settings.idle_grace_seconds:
        left = settings.idle_grace_seconds - idle_for
        if low <= current <= high:
            return Decision(keep_d, keep_s, False, f"{counts} -> idle, {left:.0f}s of grace left: keep {current} nodes")
        wanted, why = current, f"idle, {left:.0f}s of grace left, size out of bounds"
    elif work == 0:
        wanted, why = low, "idle past grace" if idle_for is not None else "no work seen"
    elif grow > current:
        wanted = grow
        why = f"demand {needed}" if grow == needed else f"demand {needed}, {grow} with queues {depth:g} deep"
    elif needed >= current:
        wanted, why = current, f"demand {needed} fits queues {depth:g} deep"
    else:
        wanted, why = min(current, needed + max(settings.shrink_headroom, 0)), f"demand {needed}, idle nodes released"

    step = max(settings.max_step, 1)
    total = _clamp(wanted, current - step, current + step)
    total = max(_clamp(total, low, high), min(busy, high))
    dedicated, spot = split(total, settings, pool.preempted if total > 0 else 0)
    if pool.preempted and spot:
        why += f", {min(pool.preempted, spot)} preempted Spot made up"
    resize = (dedicated, spot) != (keep_d, keep_s)
    verb = "resize" if resize else "keep"
    capped = " (max)" if total == high and wanted > high else ""
    reason = f"{counts} -> {why}: {verb} {dedicated} dedicated + {spot} Spot{capped} (was {keep_d}+{keep_s})"
    return Decision(dedicated, spot, resize, reason)


def hold_seconds(
    demand: Demand, empty: bool, settings: ScalingSettings, now: float,
    arrival_gap: float | None, last_arrival: float | None,
) -> float | None:
    """How much longer to hold a lone file on an empty pool so the next one shares its node start; None: start now.

    The node is asked for once it would be ready as the next file lands (`last_arrival` + `arrival_gap` -
    `node_start_seconds`), if the held file (seen at `last_arrival`) waits at most `max_hold_seconds` longer."""
    if arrival_gap is None or last_arrival is None or not empty:  # empty: no node, none asked for, min_nodes 0
        return None
    if demand.active != 1 or demand.running != 0:
        return None
    start = settings.node_start_seconds
    bound = start if settings.max_hold_seconds is None else settings.max_hold_seconds
    hold = min(bound, arrival_gap - start)  # ready as the next file lands, or as close to it as the bound allows
    if hold <= 0 or arrival_gap - hold - start > start:  # no hold needed, or the node would go before the next file
        return None
    end = last_arrival + hold
    return end - now if end > now else None


# -- arrivals -------------------------------------------------------------------------------------------------

ARRIVALS_KEPT = 9  # arrival times remembered (8 gaps)


def learn_arrivals(arrivals: list[float], now: float, new_tasks: int) -> list[float]:
    """Remember the ticks at which new tasks appeared (a burst within one tick is one arrival)."""
    if new_tasks <= 0:
        return arrivals
    return [*arrivals, now][-ARRIVALS_KEPT:]


def typical_gap(arrivals: list[float]) -> float | None:
    """The median gap between remembered arrivals; None until there are 3 of them (2 gaps)."""
    gaps = sorted(b - a for a, b in zip(arrivals, arrivals[1:], strict=False))
    if len(gaps) < 2:
        return None
    mid = len(gaps) // 2
    return gaps[mid] if len(gaps) % 2 else (gaps[mid - 1] + gaps[mid]) / 2


# -- resize errors ----------------------------------------------------------------------------------------------

RETRY_FIRST_SECONDS = 120.0
RETRY_MAX_SECONDS = 1800.0


@dataclass(frozen=True)
class ResizeRetry:
    """Where the monitor stands with a pool that Batch could not bring to its target."""

    attempts: int = 0
    next_at: float = 0.0  # no new attempt before this time
    cap: int | None = None  # most nodes to ask for until next_at (what the quota allowed), None = no cap


@dataclass(frozen=True)
class ResizePlan:
    retry: ResizeRetry
    cap: int | None  # the node cap for this tick's decision
    resend: bool  # send a resize even if the target already equals what the policy wants


def is_quota_error(code: str) -> bool:
    """AccountCoreQuotaReached, AccountLowPriorityCoreQuotaReached, the VM family's quota and the like."""
    return "quota" in code.lower()


def plan_after_resize_errors(
    codes: tuple[str, ...], current: int, target: int, now: float, retry: ResizeRetry
) -> ResizePlan:
    """Retry a resize that Batch left short of its target, with backoff (2, 4, 8 ... 30 min).

    Batch leaves such a pool `steady` below its target with `resizeErrors` set, so "the target equals what I
    want" is not done. A quota error asks for what the quota allowed (the nodes the pool got) until the backoff
    ends, then for the full demand again; any other error (allocation failure, resize timeout) sends the same
    target again once the backoff has passed. Without errors the cap holds until its time is up, so a quota
    that is still full is not hit every minute.
    """
    if not codes or current >= target:
        if retry.cap is None or target > retry.cap:
            return ResizePlan(ResizeRetry(), None, False)  # the pool reached its target: done
        if now >= retry.next_at:
            return ResizePlan(ResizeRetry(retry.attempts, retry.next_at, None), None, False)  # try the demand again
        return ResizePlan(retry, retry.cap, False)
    if now < retry.next_at:
        return ResizePlan(retry, retry.cap, False)
    attempts = retry.attempts + 1
    delay = min(RETRY_FIRST_SECONDS * 2 ** (attempts - 1), RETRY_MAX_SECONDS)
    cap = current if any(is_quota_error(c) for c in codes) else None
    return ResizePlan(ResizeRetry(attempts, now + delay, cap), cap, True)
