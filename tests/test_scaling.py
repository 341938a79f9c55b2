"""Tests for the pure pool scaling policy in shared/domain/scaling.py (properties via hypothesis, plus examples)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared.domain.scaling import Decision, Demand, ScalingSettings, decide, split
from shared.ports.batch import PoolState
from tests.support.sim.pool import OurPolicy, Sim, SimParams
from tests.support.sim.traces import burst, office_day, trickle

NOW = 100_000.0


@st.composite
def scaling_settings(draw: st.DrawFn) -> ScalingSettings:
    low = draw(st.integers(0, 10))
    high = draw(st.integers(max(low, 1), 40))
    return ScalingSettings(
        min_nodes=low,
        max_nodes=high,
        slots_per_node=draw(st.integers(1, 8)),
        spot_share=draw(st.sampled_from([0.0, 0.25, 0.5, 0.8, 1.0])),
        dedicated_floor=draw(st.integers(0, 5)),
        idle_grace_seconds=draw(st.sampled_from([0.0, 60.0, 300.0, 900.0])),
        max_step=draw(st.sampled_from([1, 3, 1000])),
        shrink_headroom=draw(st.integers(0, 2)),
        grow_queue_depth=draw(st.sampled_from([1.0, 2.0, 3.5])),
    )


demands = st.builds(Demand, st.integers(0, 500), st.integers(0, 200), st.integers(0, 20))


@st.composite
def pools(draw: st.DrawFn, state: str = "steady") -> PoolState:
    target_d, target_s = draw(st.integers(0, 50)), draw(st.integers(0, 50))
    return PoolState(
        allocation_state=state,
        current_dedicated=draw(st.integers(0, 50)),
        current_spot=draw(st.integers(0, 50)),
        target_dedicated=target_d,
        target_spot=target_s,
        preempted=draw(st.integers(0, target_s)),
    )


last_seen = st.one_of(st.none(), st.floats(0, 2 * NOW, allow_nan=False))


def total(d: Decision) -> int:
    return d.dedicated + d.spot


@given(demands, pools(), scaling_settings(), last_seen)
def test_never_above_max_or_below_min(demand: Demand, pool: PoolState, s: ScalingSettings, seen: float | None) -> None:
    d = decide(demand, pool, s, NOW, seen)
    assert s.min_nodes <= total(d) <= s.max_nodes
    assert d.dedicated >= 0 and d.spot >= 0


@given(demands, pools(), scaling_settings(), last_seen)
def test_never_shrinks_below_what_running_tasks_need(
    demand: Demand, pool: PoolState, s: ScalingSettings, seen: float | None
) -> None:
    d = decide(demand, pool, s, NOW, seen)
    assert total(d) >= min(s.max_nodes, math.ceil(demand.running / s.slots_per_node))


def pool_within(s: ScalingSettings, size: int) -> PoolState:
    """A steady pool of `size` nodes (clamped to the settings' bounds), split as the settings say."""
    size = max(s.min_nodes, min(s.max_nodes, size))
    dedicated, spot = split(size, s)
    return PoolState("steady", dedicated, spot, dedicated, spot)


@given(scaling_settings(), st.integers(0, 40), st.floats(0, 5000, allow_nan=False))
def test_scales_to_min_after_idle_grace_not_before(s: ScalingSettings, size: int, idle: float) -> None:
    s = ScalingSettings(**{**s.__dict__, "max_step": 1000})
    pool = pool_within(s, size)
    d = decide(Demand(0, 0), pool, s, NOW, NOW - idle)
    if idle < s.idle_grace_seconds:
        assert not d.resize
        assert (d.dedicated, d.spot) == (pool.target_dedicated, pool.target_spot)
    else:
        assert total(d) == s.min_nodes


@given(scaling_settings(), st.integers(0, 40), st.integers(1, 20))
def test_recently_finished_work_counts_as_work_seen(s: ScalingSettings, size: int, finished: int) -> None:
    assume(s.idle_grace_seconds > 0)
    pool = pool_within(s, size)
    d = decide(Demand(0, 0, completed_since_last=finished), pool, s, NOW, NOW - 10 * s.idle_grace_seconds)
    assert not d.resize


@given(demands, st.sampled_from(["resizing", "stopping"]).flatmap(pools), scaling_settings(), last_seen)
def test_no_resize_while_the_pool_is_resizing(
    demand: Demand, pool: PoolState, s: ScalingSettings, seen: float | None
) -> None:
    d = decide(demand, pool, s, NOW, seen)
    assert not d.resize
    assert (d.dedicated, d.spot) == (pool.target_dedicated, pool.target_spot)
    assert pool.allocation_state in d.reason


@given(demands, pools(), scaling_settings(), last_seen)
def test_autoscale_pool_is_left_alone(demand: Demand, pool: PoolState, s: ScalingSettings, seen: float | None) -> None:
    pool = PoolState(**{**pool.__dict__, "auto_scale": True})
    d = decide(demand, pool, s, NOW, seen)
    assert not d.resize
    assert (d.dedicated, d.spot) == (pool.target_dedicated, pool.target_spot)
    assert "autoscale" in d.reason


@given(st.integers(0, 60), scaling_settings())
def test_spot_preferred_up_to_share_and_dedicated_floor_kept(n: int, s: ScalingSettings) -> None:
    dedicated, spot = split(n, s)
    assert dedicated + spot == n
    assert spot <= math.floor(n * s.spot_share + 1e-9)
    if n > 0:
        assert dedicated >= min(s.dedicated_floor, n)
    # Spot is preferred: as many Spot nodes as both the share and the floor allow.
    assert spot == max(0, min(math.floor(n * s.spot_share + 1e-9), n - min(s.dedicated_floor, n)))


@given(demands, pools(), scaling_settings(), last_seen)
def test_decisions_split_spot_and_dedicated_by_the_settings(
    demand: Demand, pool: PoolState, s: ScalingSettings, seen: float | None
) -> None:
    pool = PoolState(**{**pool.__dict__, "preempted": 0})
    d = decide(demand, pool, s, NOW, seen)
    if d.resize:
        assert (d.dedicated, d.spot) == split(total(d), s)


@given(st.integers(1, 30), st.integers(0, 30), st.sampled_from([0.5, 0.8, 1.0]))
def test_preempted_spot_nodes_are_made_up_for(work: int, preempted: int, share: float) -> None:
    s = ScalingSettings(min_nodes=0, max_nodes=100, spot_share=share, grow_queue_depth=1.0)
    base_d, base_s = split(work, s)
    preempted = min(preempted, base_s)
    pool = PoolState("steady", base_d, base_s, base_d, base_s, preempted=preempted)
    d = decide(Demand(work, 0), pool, s, NOW, NOW)
    assert d.spot == base_s
    assert d.dedicated == base_d + preempted
    assert d.dedicated + d.spot - preempted >= work  # working nodes cover the demand
    if preempted:
        assert d.resize and "preempted" in d.reason


@given(st.integers(0, 30), st.integers(0, 30))
def test_preemption_make_up_stays_within_max(work: int, preempted: int) -> None:
    s = ScalingSettings(min_nodes=0, max_nodes=10, spot_share=1.0)
    pool = PoolState("steady", 0, 10, 0, 10, preempted=min(preempted, 10))
    d = decide(Demand(work, 0), pool, s, NOW, NOW)
    assert total(d) <= 10


@given(demands, pools(), scaling_settings(), last_seen)
def test_step_is_bounded_and_reason_is_one_line(
    demand: Demand, pool: PoolState, s: ScalingSettings, seen: float | None
) -> None:
    current = pool.target_dedicated + pool.target_spot
    assume(s.min_nodes <= current <= s.max_nodes)
    assume(math.ceil(demand.running / s.slots_per_node) <= current)
    d = decide(demand, pool, s, NOW, seen)
    assert abs(total(d) - current) <= s.max_step + max(pool.preempted, 0)
    assert d.reason and "\n" not in d.reason


@settings(max_examples=50)
@given(st.integers(1, 500))
def test_grows_at_once_from_empty(files: int) -> None:
    s = ScalingSettings(min_nodes=0, max_nodes=25, grow_queue_depth=1.0)
    d = decide(Demand(files, 0), PoolState("steady", 0, 0, 0, 0), s, NOW, None)
    assert d.resize and total(d) == min(25, files)


def test_burst_goes_to_max_in_one_decision() -> None:
    s = ScalingSettings(min_nodes=0, max_nodes=25)
    d = decide(Demand(active=200, running=0), PoolState("steady", 0, 0, 0, 0), s, NOW, None)
    assert (d.dedicated, d.spot, d.resize) == (25, 0, True)
    assert "active=200" in d.reason


def test_queue_depth_hysteresis() -> None:
    s = ScalingSettings(min_nodes=0, max_nodes=25, grow_queue_depth=2.0)
    one = PoolState("steady", 1, 0, 1, 0)
    assert not decide(Demand(active=1, running=1), one, s, NOW, NOW).resize  # one queued behind one running
    grow = decide(Demand(active=2, running=1), one, s, NOW, NOW)
    assert grow.resize and total(grow) == 2
    three = PoolState("steady", 3, 0, 3, 0)
    assert not decide(Demand(active=2, running=1), three, s, NOW, NOW).resize  # 3 tasks, 3 nodes
    shrink = decide(Demand(active=0, running=1), three, s, NOW, NOW)
    assert shrink.resize and total(shrink) == 1  # idle nodes go while there is work


def test_shrink_headroom_keeps_idle_nodes_while_there_is_work() -> None:
    s = ScalingSettings(min_nodes=0, max_nodes=25, shrink_headroom=1)
    d = decide(Demand(active=0, running=2), PoolState("steady", 5, 0, 5, 0), s, NOW, NOW)
    assert total(d) == 3


def test_never_seen_work_goes_to_min() -> None:
    s = ScalingSettings(min_nodes=2, max_nodes=10)
    d = decide(Demand(0, 0), PoolState("steady", 5, 0, 5, 0), s, NOW, None)
    assert total(d) == 2 and d.resize


def test_monitor_call_shape_still_works() -> None:
    """The monitor calls decide positionally with the original fields only."""
    d = decide(Demand(3, 1), PoolState("steady", 0, 0, 0, 0), ScalingSettings(), 0.0, None)
    assert isinstance(d, Decision)
    assert (d.dedicated, d.spot, d.resize) == (2, 0, True)  # 4 tasks, queues 2 deep per slot: 2 nodes at once



@pytest.mark.parametrize("trace_name", ["burst", "office day"])
def test_benchmark_simulation_keeps_batch_constraints(trace_name: str) -> None:
    """The pool simulator: our timer resizes only a steady pool; no node works before allocation + start task."""

    class RecordingSim(Sim):
        states: list[str] = []
        targets: list[int] = []

        def resize(self, target: int, t: float) -> None:
            self.states.append(self.allocation_state(t))
            self.targets.append(target)
            super().resize(target, t)

    params = SimParams()
    trace = burst() if trace_name == "burst" else office_day(1)
    sim = RecordingSim(params, trace.arrivals, seed=1)
    sim.states, sim.targets = [], []
    result = sim.run(trace.horizon, OurPolicy(ScalingSettings(min_nodes=0, max_nodes=25)))
    assert sim.states and set(sim.states) == {"steady"}  # the policy never asked a resizing pool to resize
    assert len(result.waits) == len(trace.arrivals) and min(result.waits) >= 0
    assert min(sim.targets) >= 0 and max(sim.targets) <= 25  # within the bounds it was given


# -- issue 11: shrinks that block growth, sparse traffic, resize errors ----------------------------------------

from shared.domain.scaling import (  # noqa: E402
    ResizeRetry,
    learn_arrivals,
    plan_after_resize_errors,
    typical_gap,
)


def test_a_shrink_in_progress_is_stopped_when_demand_wants_more() -> None:
    s = ScalingSettings(max_nodes=10, slots_per_node=2)
    shrinking = PoolState("resizing", 3, 0, 0, 0)  # three nodes draining towards 0
    d = decide(Demand(active=6, running=0), shrinking, s, NOW, NOW)
    assert d.stop_resize and not d.resize and "resizing" in d.reason
    assert not decide(Demand(0, 0), shrinking, s, NOW, NOW - 10_000).stop_resize  # no demand: let it shrink
    growing = PoolState("resizing", 1, 0, 4, 0)
    assert not decide(Demand(active=20, running=0), growing, s, NOW, NOW).stop_resize  # never stop a grow


def test_on_sparse_traffic_the_pool_goes_at_once_and_keeps_its_grace_otherwise() -> None:
    s = ScalingSettings(max_nodes=10, idle_grace_seconds=300, node_start_seconds=330)
    one = PoolState("steady", 1, 0, 1, 0)
    idle = Demand(0, 0)
    sparse = decide(idle, one, s, NOW, NOW - 30, arrival_gap=1200)
    assert sparse.resize and total(sparse) == 0 and "later than a node start" in sparse.reason
    busy_traffic = decide(idle, one, s, NOW, NOW - 30, arrival_gap=120)
    assert not busy_traffic.resize and total(busy_traffic) == 1  # the next file comes before a node could start
    assert not decide(idle, one, s, NOW, NOW - 30).resize  # nothing learnt yet: the grace holds
    late = decide(idle, one, s, NOW, NOW - 1000, arrival_gap=1200)  # no pre-start: past the grace it goes
    assert total(late) == 0


def test_arrival_gaps_are_learnt_from_ticks_with_new_tasks() -> None:
    arrivals: list[float] = []
    for t, new in ((0, 1), (60, 0), (600, 3), (1200, 1), (1260, 0), (1800, 1)):
        arrivals = learn_arrivals(arrivals, t, new)
    assert arrivals == [0, 600, 1200, 1800] and typical_gap(arrivals) == 600
    assert typical_gap([0, 600]) is None  # one gap is not a pattern
    assert len(learn_arrivals(list(range(20)), 21, 1)) == 9


def test_resize_errors_are_retried_with_backoff_and_quota_caps_the_ask() -> None:
    plan = plan_after_resize_errors(("AccountCoreQuotaReached",), 3, 10, 1000.0, ResizeRetry())
    assert plan.resend and plan.cap == 3 and plan.retry.next_at == 1000.0 + 120
    held = plan_after_resize_errors((), 3, 3, 1060.0, plan.retry)  # resized down to what the quota allows
    assert held.cap == 3 and not held.resend
    lifted = plan_after_resize_errors((), 3, 3, 1121.0, held.retry)
    assert lifted.cap is None and lifted.retry.attempts == 1  # try the demand again, backoff remembered
    second = plan_after_resize_errors(("AccountCoreQuotaReached",), 3, 10, 1200.0, lifted.retry)
    assert second.retry.next_at == 1200.0 + 240
    done = plan_after_resize_errors((), 10, 10, 5000.0, ResizeRetry(2, 4000.0, None))
    assert done.retry == ResizeRetry() and done.cap is None
    other = plan_after_resize_errors(("AllocationFailed",), 0, 2, 0.0, ResizeRetry())
    assert other.resend and other.cap is None


# -- sparse traffic: a lone file waits for the next one to share its node start ---------------------------------

EMPTY = PoolState("steady", 0, 0, 0, 0)


def test_a_lone_file_waits_for_the_next_one_to_share_its_node_start() -> None:
    s = ScalingSettings(max_nodes=10, slots_per_node=2, node_start_seconds=330)
    one_file = Demand(active=1, running=0)
    held = decide(one_file, EMPTY, s, NOW, NOW, arrival_gap=600, last_arrival=NOW)  # next file due at NOW + 600
    assert not held.resize and total(held) == 0 and "hold 270s" in held.reason
    assert not decide(one_file, EMPTY, s, NOW + 240, NOW, 600, NOW).resize  # 30 s before the start is due: still held
    due = decide(one_file, EMPTY, s, NOW + 270, NOW, 600, NOW)  # a node asked for now is ready at NOW + 600
    assert due.resize and total(due) == 1


def test_a_lone_file_starts_at_once_when_holding_would_not_pay() -> None:
    s = ScalingSettings(max_nodes=10, slots_per_node=2, node_start_seconds=330)
    one_file = Demand(active=1, running=0)
    started = [
        decide(one_file, EMPTY, s, NOW, NOW, 1200, NOW),  # the next file is 870 s of hold away: more than a start
        decide(one_file, EMPTY, s, NOW, NOW, 200, NOW),  # the next file lands before a node could start anyway
        decide(one_file, EMPTY, s, NOW, NOW, None, None),  # nothing learnt yet
        decide(Demand(active=2, running=0), EMPTY, s, NOW, NOW, 600, NOW),  # two files fill the start already
        decide(one_file, EMPTY, replace(s, max_hold_seconds=0), NOW, NOW, 600, NOW),  # holds turned off
    ]
    assert all(d.resize and total(d) == 1 for d in started), [d.reason for d in started]
    starting = PoolState("steady", 0, 0, 1, 0)  # a node asked for already: nothing to share by waiting
    assert "hold" not in decide(one_file, starting, s, NOW, NOW, 600, NOW).reason
    assert total(decide(one_file, EMPTY, replace(s, min_nodes=1), NOW, NOW, 600, NOW)) == 1


@given(demands, scaling_settings(), st.floats(0, 3600), st.floats(0, 3600))
def test_waiting_work_other_than_one_lone_file_gets_a_node_at_once(
    demand: Demand, s: ScalingSettings, gap: float, since: float
) -> None:
    assume(demand.active + demand.running > 0 and (demand.active, demand.running) != (1, 0))
    d = decide(demand, EMPTY, s, NOW + since, NOW, gap, NOW)
    assert total(d) >= 1 and "hold" not in d.reason


@given(st.integers(0, 1), st.floats(0, 3600), st.floats(0, 3600), st.floats(0, 3600),
       st.sampled_from([None, 0.0, 120.0, 600.0]))
def test_a_lone_file_is_held_exactly_while_the_hold_is_short_and_the_next_file_would_share(
    low: int, gap: float, since: float, start: float, bound: float | None
) -> None:
    s = ScalingSettings(min_nodes=low, max_nodes=10, slots_per_node=2, node_start_seconds=start,
                        max_hold_seconds=bound)
    d = decide(Demand(1, 0), EMPTY, s, NOW + since, NOW, gap, NOW)  # the file was seen at NOW, `since` ago
    limit = start if bound is None else bound
    hold = min(limit, gap - start)  # ready as the next file lands, or as near as the bound allows
    # Held while the hold lasts, if the node then started is up when the next file lands (ready, or idle
    # for less than a node start, which rule 6 keeps it for).
    pays = low == 0 and hold > 0 and gap - hold - start <= start and since < hold
    assume(all(abs(x) > 1e-6 for x in (hold, gap - hold - 2 * start, since - hold)))  # not on a float edge
    assert (total(d) == 0) == pays, d.reason
    if pays:
        assert "hold" in d.reason and not d.resize and since <= limit  # the held file waits at most `limit` more


def test_an_idle_node_stays_when_the_next_file_is_due_within_a_node_start_of_the_newest_arrival() -> None:
    s = ScalingSettings(max_nodes=10, idle_grace_seconds=300, node_start_seconds=330)
    one, idle = PoolState("steady", 1, 0, 1, 0), Demand(0, 0)
    kept = decide(idle, one, s, NOW, NOW - 30, arrival_gap=900, last_arrival=NOW - 630)  # next due in 270 s
    assert not kept.resize and total(kept) == 1
    gone = decide(idle, one, s, NOW, NOW - 30, arrival_gap=900, last_arrival=NOW - 60)  # next due in 840 s
    assert gone.resize and total(gone) == 0 and "840s" in gone.reason


@pytest.mark.parametrize("minutes", [10, 15])
def test_on_regular_sparse_traffic_files_share_node_starts_and_none_waits_past_two(minutes: int) -> None:
    """Simulated, one file every 10 or 15 minutes for 8 hours: about one node start per two files, a short wait."""

    params = SimParams()
    trace = trickle(every_s=60.0 * minutes, hours=8.0)
    sim = Sim(params, trace.arrivals, seed=1)
    s = ScalingSettings(min_nodes=0, max_nodes=25, slots_per_node=params.slots_per_node)
    result = sim.run(trace.horizon, OurPolicy(s))
    files, starts = len(trace.arrivals), len(sim.nodes)
    assert starts <= files // 2 + 2  # the first files start alone until a gap is learnt
    start = params.allocation_s + params.start_task_s
    assert max(result.waits) <= 2 * start + 60  # two node starts and the monitor's minute at most
