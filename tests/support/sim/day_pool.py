"""The voice-memo day on the simulated pool under our policy, on the pool before issue 29 and after (bench.scale_day).

Before: a slot per vCPU of standard_d2s_v3 (2), every task a slot, the policy counting tasks. After:
BATCH_SLOTS_PER_NODE's default (8), a memo asking for the slots its size needs (1), the policy counting slots. The
files land at the day's constant rate; each is a 2 s memo (tests/support/sim/workloads.py: 0.08 s of a core plus
Batch's per-task gap, median 1 s); the pool starts empty and may grow to `max_nodes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.scaling import ScalingSettings
from tests.support.sim.pool import OurPolicy, Sim, SimParams
from tests.support.sim.traces import steady
from tests.support.sim.workloads import MEMOS


@dataclass(frozen=True)
class DayPool:
    """What one pool did over the simulated span."""

    mean_nodes: float  # billed node-seconds / the span: the nodes paid for on average
    peak_nodes: int  # the most nodes the policy asked for
    steady_nodes: float  # mean nodes billed after `settled_s` (the cold start left out)
    p95_wait_s: float  # over every file, the cold start included
    steady_p95_wait_s: float  # files landing after `settled_s`
    resizes: int
    settled_s: float  # the first hour, or half the span when it is shorter


def run_day(files_per_day: float, hours: float, slots_per_node: int, vcpus: int, count_slots: bool,
            max_nodes: int = 25, seed: int = 1) -> DayPool:
    trace = steady(files_per_day, hours)
    params = SimParams(slots_per_node=slots_per_node, vcpus=vcpus, max_nodes=max_nodes)
    sim = Sim(params, trace.arrivals, seed, MEMOS)
    targets: list[int] = []
    resize = sim.resize

    def recording(target: int, t: float) -> None:
        targets.append(target)
        resize(target, t)

    sim.resize = recording  # type: ignore[method-assign]  # the sim's own resize, its targets noted
    settings = ScalingSettings(min_nodes=0, max_nodes=max_nodes, slots_per_node=slots_per_node)
    result = sim.run(trace.horizon, OurPolicy(settings, count_slots=count_slots))
    span = trace.horizon
    after = min(3600.0, span / 2)
    later = sum(max(0.0, min(n.released if n.released is not None else span, span) - max(n.requested, after))
                for n in sim.nodes)
    waits = sorted(task.start - task.arrival for task in sim.tasks if task.start is not None)
    steady_waits = sorted(task.start - task.arrival for task in sim.tasks
                          if task.start is not None and task.arrival >= after)
    return DayPool(result.node_seconds / span, max(targets, default=0), later / (span - after),
                   _p95(waits), _p95(steady_waits), result.resizes, after)


def _p95(xs: list[float]) -> float:
    return xs[int(0.95 * (len(xs) - 1))] if xs else 0.0
