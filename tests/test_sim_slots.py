"""The pool simulator's slot model against the policy's arithmetic: slots per node, requiredSlots, cores, the gap."""

from __future__ import annotations

import math
import random

import pytest

from shared.domain.scaling import ScalingSettings, decide, observe
from shared.ports.batch import PoolState
from tests.support.sim.day_pool import run_day
from tests.support.sim.pool import OurPolicy, Sim, SimParams, StaticPool
from tests.support.sim.traces import burst
from tests.support.sim.workloads import MEMOS, RECORDINGS, VIDEOS, Files, gap_draw


def most_at_once(sim: Sim, weight: str = "tasks") -> int:
    """The most tasks (or slots) running at any instant, from the tasks' start and done times."""
    edges = []
    for task in sim.tasks:
        w = 1 if weight == "tasks" else task.slots
        edges += [(task.start, w), (task.done, -w)]
    now = best = 0
    for _, w in sorted(edges, key=lambda e: (e[0], e[1])):  # a slot freed at t is taken at t: ends first
        now += w
        best = max(best, now)
    return best


@pytest.mark.parametrize(("nodes", "slots"), [(3, 8), (5, 2), (2, 4)])
def test_n_nodes_of_s_slots_run_at_most_n_times_s_one_slot_tasks_at_once(nodes: int, slots: int) -> None:
    params = SimParams(slots_per_node=slots, vcpus=2)
    trace = burst(files=400)
    sim = Sim(params, trace.arrivals, seed=1, files=MEMOS)
    sim.run(trace.horizon, StaticPool(nodes))
    assert {t.slots for t in sim.tasks} == {1}  # a memo asks for one slot on every pool
    assert most_at_once(sim) == nodes * slots  # the pool fills, and never past its slots


def test_a_core_worth_task_takes_four_of_eight_slots_so_two_run_on_a_node() -> None:
    params = SimParams(slots_per_node=8, vcpus=2)
    trace = burst(files=40)
    sim = Sim(params, trace.arrivals, seed=1, files=RECORDINGS)
    sim.run(trace.horizon, StaticPool(3))
    assert {t.slots for t in sim.tasks} == {4}  # a 1 h recording asks for a core's worth
    assert most_at_once(sim) == 3 * 2  # one per core: 2 a node
    assert most_at_once(sim, "slots") == 3 * 8


def test_three_slot_tasks_leave_two_of_eight_slots_empty_rather_than_overfill_a_node() -> None:
    params = SimParams(slots_per_node=8, vcpus=2)
    songs = Files("1 MB files", work_median_s=2.0, size_bytes=1_000_000)  # 592 kB-1.78 MB: 3 slots (docs/scaling.md)
    trace = burst(files=30)
    sim = Sim(params, trace.arrivals, seed=1, files=songs)
    sim.run(trace.horizon, StaticPool(2))
    assert {t.slots for t in sim.tasks} == {3}
    assert most_at_once(sim) == 2 * 2 and most_at_once(sim, "slots") == 2 * 6


def test_a_node_computes_at_most_its_vcpus_at_once_whatever_its_slots() -> None:
    # 8 one-slot tasks of 10 core seconds, no gap, on one 2-vCPU node of 8 slots: they hold all 8 slots at once,
    # but the 2 cores do 80 core seconds in 40 s, so the last ends at 40 s, not 10 s.
    params = SimParams(slots_per_node=8, vcpus=2, gap_median_s=0.0)
    trace = burst(files=8)
    sim = Sim(params, trace.arrivals, seed=1, files=MEMOS)
    for task in sim.tasks:
        task.work = 10.0
    sim.run(trace.horizon, StaticPool(1))
    assert most_at_once(sim) == 8
    assert max(t.done for t in sim.tasks) == pytest.approx(40.0)


def test_a_task_holds_its_slots_for_its_gap_and_its_work() -> None:
    params = SimParams(slots_per_node=2, vcpus=2)
    trace = burst(files=2)
    sim = Sim(params, trace.arrivals, seed=3, files=VIDEOS)
    sim.run(trace.horizon, StaticPool(1))
    for task in sim.tasks:
        assert task.done - task.start == pytest.approx(task.gap + task.work)


def test_the_gap_is_a_second_at_the_median_and_mostly_half_to_two_seconds() -> None:
    rng = random.Random(7)
    gaps = sorted(gap_draw(rng) for _ in range(20_000))
    assert gaps[len(gaps) // 2] == pytest.approx(1.0, rel=0.03)
    inside = sum(1 for g in gaps if 0.5 <= g <= 2.0) / len(gaps)
    assert 0.88 <= inside <= 0.92


@pytest.mark.parametrize(("files", "nodes"), [(MEMOS, 3), (RECORDINGS, 10)])
def test_the_simulated_monitor_asks_for_the_nodes_the_policy_counts_from_slots(files, nodes: int) -> None:
    """40 files queued on an empty 8-slot pool: the policy's first decision is ceil(slots / (8 x depth 2)) nodes,
    3 for memos (a slot each) and 10 for recordings (4 each), and the sim hands decide exactly those slot counts."""
    params = SimParams(slots_per_node=8, vcpus=2)
    trace = burst(files=40)
    settings = ScalingSettings(max_nodes=25, slots_per_node=8)
    sim = Sim(params, trace.arrivals, seed=1, files=files)
    policy = OurPolicy(settings)
    sim.run(trace.horizon, policy)
    first = policy.log[0]
    assert first.split()[0] == "30s" and f"resize {nodes} dedicated" in first
    slots = sum(t.slots for t in sim.tasks)
    expected = decide(observe(40, 0, 0, None, slots, 0), PoolState("steady", 0, 0, 0, 0), settings, 30.0, None)
    assert expected.dedicated == nodes == math.ceil(slots / 16)


def test_counting_tasks_on_the_old_pool_asks_for_a_node_per_two_tasks() -> None:
    params = SimParams(slots_per_node=2, vcpus=2)
    trace = burst(files=40)
    sim = Sim(params, trace.arrivals, seed=1, files=MEMOS)
    policy = OurPolicy(ScalingSettings(max_nodes=25, slots_per_node=2), count_slots=False)
    sim.run(trace.horizon, policy)
    assert "resize 10 dedicated" in policy.log[0]  # ceil(40 / (2 x 2))


def test_on_the_voice_memo_day_the_pool_settles_at_three_nodes_or_fewer_with_slots() -> None:
    """A million 2 s memos a day (11.6 a second), an hour from an empty pool: with 8 slots and the policy counting
    slots the pool settles at 3 nodes or fewer; a slot per vCPU needs at least 6 just to hold the tasks' gaps."""
    after = run_day(1_000_000, 1.0, slots_per_node=8, vcpus=2, count_slots=True)
    before = run_day(1_000_000, 1.0, slots_per_node=2, vcpus=2, count_slots=False)
    assert after.steady_nodes <= 3 and after.steady_p95_wait_s < 5
    assert before.steady_nodes >= 6
