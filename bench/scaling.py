"""Scaling benchmark: our policy vs a static pool and Batch's autoscale formula on simulated traces.

Run: .venv/bin/python -m bench.scaling   (deterministic; a few minutes; prints figures, asserts nothing)
     `--smoke`: seed 1 only (for the test suite; the figures differ from the five-seed ones)

The pool model and its modelling notes are in tests/support/sim/pool.py, the traces in tests/support/sim/traces.py,
the files and Batch's per-task gap (lognormal, median 1 s, 90% in 0.5-2 s, with its source) in
tests/support/sim/workloads.py. Every policy gets the same traces, the same files (work and size drawn once per file
and seed), the same gaps, the same node start-up (240 s allocation + 90 s start task) and 25 nodes at most. Each
trace runs on two pools of standard_d2s_v3 (2 vCPUs), side by side:
* before (issue 29): 2 slots a node (one per vCPU), every task one slot, our policy counting tasks;
* after: BATCH_SLOTS_PER_NODE's default (8), each task asking for the slots its input's size needs
  (shared.domain.task_slots), our policy counting slots (taskSlotCounts). Static 5 and the formula run on the same
  pools (the formula, verbatim from the docs, counts tasks: one node per pending task on either).
Each trace runs with seeds 1-5; waits (queued until the task has its slots) and end-to-end times are percentiles
over every file of every seed, node-minutes the mean per run.

Setup, as the issue specifies it:
* static 5: five nodes, started before the first file lands, billed for the whole trace;
* formula: Batch's documented $PendingTasks sample formula (startingNumberOfVMs 1, maxNumberofVMs 25,
  taskcompletion), evaluated at 150 s and then every 300 s, samples every 30 s visible 60 s late; the
  pool (and its sample history) starts with the trace, so the first evaluation has 4 of 6 samples
  (< 70%) and gives startingNumberOfVMs. Other readings are in the sensitivity tables;
* ours: shared.domain.scaling.decide on the 1-minute timer (first tick 30 s into the trace, the mean phase),
  with OUR_SETTINGS below; no submit-path nudge in the headline (see the sensitivity table for why).

The last line is the headline, all on the "after" pool: p95_wait_vs_formula is the worst ratio over the burst and
the office day, node_minutes_vs_formula the worst over the three video traces, the sparse figures the worst over the
sparse traces (one file every 10, 20, 30 min; issue 11, item 9); then after against before (issue 29):
p95_wait_vs_before and node_minutes_vs_before the worst over every trace (burst, trickle, office day, memos,
recordings, mix; 1.00 when both are 0), memos_node_minutes_vs_before the voice-memo office day's; and
sweep_p95_wait_vs_formula / sweep_node_minutes_vs_formula the worst over sparse traffic at every gap from 5 to 60
minutes, regular and Poisson, with 30 s and 4-minute conversions (--smoke: 5, 30 and 60 minutes).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace

from shared.domain.scaling import ScalingSettings
from tests.support.sim.pool import AutoscaleFormula, Controller, OurPolicy, Sim, SimParams, StaticPool
from tests.support.sim.throughput import CODE
from tests.support.sim.traces import Trace, burst, office_day, poisson, trickle
from tests.support.sim.workloads import LONG_VIDEOS, MEMOS, MIX, RECORDINGS

SEEDS = (1, 2, 3, 4, 5)

# The two pools: before issue 29 a slot per vCPU of standard_d2s_v3, now BATCH_SLOTS_PER_NODE's default.
BEFORE = SimParams(slots_per_node=CODE.slots_before, vcpus=CODE.vcpus)
AFTER = SimParams(slots_per_node=CODE.slots_default, vcpus=CODE.vcpus)
# What the project would configure in Azure: BATCH_MIN_NODES=0, BATCH_MAX_NODES=25, the pool's slots per node,
# dedicated nodes only; the rest are the policy's defaults.
OUR_SETTINGS = ScalingSettings(
    min_nodes=0,
    max_nodes=25,
    slots_per_node=AFTER.slots_per_node,
    spot_share=0.0,
    dedicated_floor=0,
    idle_grace_seconds=300.0,
    max_step=1000,
    shrink_headroom=0,
    grow_queue_depth=2.0,
)
BEFORE_SETTINGS = replace(OUR_SETTINGS, slots_per_node=BEFORE.slots_per_node)

TraceFactory = Callable[[int], Trace]
TRACES: dict[str, TraceFactory] = {
    "burst": lambda seed: burst(),
    "trickle": lambda seed: trickle(),
    "office day": office_day,
}
# Issue 29's traces: short files (2 s voice memos), long ones (1 h recordings), and a mix, over an office day.
SLOT_TRACES: dict[str, TraceFactory] = {
    "memos": lambda seed: office_day(seed, files=100_000).of(MEMOS, "memos"),
    "recordings": lambda seed: office_day(seed, files=1000).of(RECORDINGS, "recordings"),
    "mix": lambda seed: office_day(seed, files=5000).of(MIX, "mix"),
}
# Sparse traffic (issue 11, item 9): one file every 10, 20, 30 minutes for 8 hours.
SPARSE: dict[str, TraceFactory] = {
    f"sparse {m} min": (lambda seed, m=m: trickle(every_s=60.0 * m, hours=8.0)) for m in (10, 20, 30)
}
POLICIES: dict[str, Callable[[], Controller]] = {
    "static 5": lambda: StaticPool(5),
    "formula": lambda: AutoscaleFormula(),
    "ours": lambda: OurPolicy(OUR_SETTINGS),
}
# The same policies on the pool before issue 29 (our policy counting tasks, as it did).
POLICIES_BEFORE: dict[str, Callable[[], Controller]] = {
    **POLICIES, "ours": lambda: OurPolicy(BEFORE_SETTINGS, count_slots=False),
}
SWEEP_MINUTES = tuple(range(5, 61))


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in 0..100."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def measure(make: Callable[[], Controller], trace: TraceFactory, params: SimParams) -> dict[str, float]:
    waits: list[float] = []
    e2e: list[float] = []
    node_seconds = 0.0
    for seed in SEEDS:
        t = trace(seed)
        result = Sim(params, t.arrivals, seed, t.files).run(t.horizon, make())
        waits += result.waits
        e2e += result.end_to_end
        node_seconds += result.node_seconds
    return {
        "p50_wait": percentile(waits, 50),
        "p95_wait": percentile(waits, 95),
        "p95_e2e": percentile(e2e, 95),
        "node_min": node_seconds / len(SEEDS) / 60,
    }


def ratio(ours: float, anchor: float) -> str:
    if anchor > 0:
        return f"{ours / anchor:5.2f}x"
    return "  1.00x" if ours == 0 else "    n/a"


def cell(m: dict[str, float]) -> str:
    return f"{m['p95_wait']:5.0f} / {m['node_min']:6.1f}"


def shifted_burst(at: float) -> TraceFactory:
    """The burst landing `at` seconds into the trace (the pool idle before it), 2 h after it."""
    return lambda seed: Trace(f"burst@{at:.0f}", tuple(at for _ in range(200)), at + 7200)


def side_by_side(trace_name: str, trace: TraceFactory) -> dict[str, dict[str, dict[str, float]]]:
    """Every policy on the pool before and after issue 29; prints the two column groups side by side."""
    print(trace_name)
    head = f"{'p50 wait':>9} {'p95 wait':>9} {'p95 e2e':>9} {'node-min':>10}"
    print(f"  {'':<10} {'before (2 slots, tasks)':^40} | {'after (8 slots, slots)':^40}")
    print(f"  {'policy':<10} {head} | {head}")
    out: dict[str, dict[str, dict[str, float]]] = {"before": {}, "after": {}}
    for name in POLICIES:
        b = out["before"][name] = measure(POLICIES_BEFORE[name], trace, BEFORE)
        a = out["after"][name] = measure(POLICIES[name], trace, AFTER)
        row = [f"{m['p50_wait']:9.0f} {m['p95_wait']:9.0f} {m['p95_e2e']:9.0f} {m['node_min']:10.1f}" for m in (b, a)]
        print(f"  {name:<10} {row[0]} | {row[1]}")
    b, a = out["before"]["ours"], out["after"]["ours"]
    print(f"  ours after / before: p95 wait {ratio(a['p95_wait'], b['p95_wait'])}  "
          f"node-min {ratio(a['node_min'], b['node_min'])}")
    return out


def worse(after: float, before: float) -> float:
    """after / before, 1.0 when both are 0 (no file waited on either)."""
    if before > 0:
        return after / before
    return 1.0 if after == 0 else float("inf")


def main(argv: list[str] | None = None) -> None:
    global SEEDS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="seed 1 only")
    smoke = parser.parse_args(argv).smoke
    if smoke:
        SEEDS = (1,)
    params = AFTER
    print("Pool scaling benchmark (simulated Azure Batch pool; times in seconds)")
    print(f"  node start-up {params.allocation_s:.0f}s allocation + {params.start_task_s:.0f}s start task; "
          f"{params.vcpus} vCPUs, {BEFORE.slots_per_node} slots/node before, {AFTER.slots_per_node} after; "
          f"max {params.max_nodes} nodes; Batch gap lognormal median {params.gap_median_s:g}s sigma "
          f"{params.gap_sigma:.2f}; seeds {list(SEEDS)}")
    print(f"  ours: 1-minute timer, no nudge, {OUR_SETTINGS}")
    print()

    results: dict[str, dict[str, dict[str, float]]] = {}
    slot_results: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for trace_name, trace in {**TRACES, **SLOT_TRACES, **SPARSE}.items():
        slot_results[trace_name] = side_by_side(trace_name, trace)
        results[trace_name] = slot_results[trace_name]["after"]
        if trace_name in TRACES or trace_name in SPARSE:
            ours = results[trace_name]["ours"]
            for anchor in ("static 5", "formula"):
                a = results[trace_name][anchor]
                print(f"  after, ours / {anchor:<9} p95 wait {ratio(ours['p95_wait'], a['p95_wait'])}  "
                      f"p95 e2e {ratio(ours['p95_e2e'], a['p95_e2e'])}  "
                      f"node-min {ratio(ours['node_min'], a['node_min'])}")
        print()

    fast = replace(params, start_task_s=20.0)
    print("Start task 90 s (apt-get install ffmpeg) vs 20 s (static ffmpeg as a Batch application package), after:")
    print(f"  p95 wait / node-min  {'trace':<11} {'policy':<9} {'start 90s':>16} {'start 20s':>16}")
    for trace_name, trace in TRACES.items():
        for name in ("formula", "ours"):
            print(f"  {'':<20} {trace_name:<11} {name:<9} {cell(results[trace_name][name]):>16} "
                  f"{cell(measure(POLICIES[name], trace, fast)):>16}")
    print()

    print("Sensitivity, p95 wait / node-min, after (other readings of the anchor and of ours; not in the headline):")
    variants: dict[str, Callable[[], Controller]] = {
        "formula, result rounded up": lambda: AutoscaleFormula(rounding="ceil"),
        "formula, 10 min idle history": lambda: AutoscaleFormula(history_s=600.0),
        "ours + nudge at once": lambda: OurPolicy(OUR_SETTINGS, nudge=True),
        "ours + nudge 15 s later": lambda: OurPolicy(OUR_SETTINGS, nudge=True, nudge_delay_s=15.0),
        "ours, grace 120 s": lambda: OurPolicy(replace(OUR_SETTINGS, idle_grace_seconds=120.0)),
        "ours, queue depth 1": lambda: OurPolicy(replace(OUR_SETTINGS, grow_queue_depth=1.0)),
    }
    print(f"  {'variant':<29}" + "".join(f"{t:>17}" for t in TRACES))
    for name, make in variants.items():
        print(f"  {name:<29}" + "".join(f"{cell(measure(make, trace, params)):>17}" for trace in TRACES.values()))
    print()

    print("Burst phase, after: the same burst landing at 8 points of the formula's 300 s cycle (pool idle before):")
    ratios: list[float] = []
    for k in range(8):
        at = 600 + 300 * k / 8
        f = measure(POLICIES["formula"], shifted_burst(at), params)
        o = measure(POLICIES["ours"], shifted_burst(at), params)
        ratios.append(o["p95_wait"] / f["p95_wait"])
        print(f"  at {at:5.1f}s  formula {cell(f)}  ours {cell(o)}  p95 wait {ratios[-1]:.2f}x")
    print(f"  p95 wait ratio over phases: mean {sum(ratios) / len(ratios):.2f}x, worst {max(ratios):.2f}x")
    print()

    minutes = (5, 30, 60) if smoke else SWEEP_MINUTES
    print("Sparse traffic at every gap, after: ours / formula, p95 wait ratio / node-min ratio (8 h, seeds as above):")
    kinds = {"regular 30 s": (False, None), "regular 4 min": (False, LONG_VIDEOS),
             "Poisson 30 s": (True, None), "Poisson 4 min": (True, LONG_VIDEOS)}
    print(f"  {'gap':>7}" + "".join(f"{k:>20}" for k in kinds))
    sweep_wait = sweep_nm = 0.0
    for m in minutes:
        cells = []
        for is_poisson, files in kinds.values():
            def trace(seed: int, m: int = m, is_poisson: bool = is_poisson, files=files) -> Trace:
                t = poisson(seed, 60.0 * m) if is_poisson else trickle(every_s=60.0 * m, hours=8.0)
                return t if files is None else t.of(files)
            f = measure(POLICIES["formula"], trace, params)
            o = measure(POLICIES["ours"], trace, params)
            w, n = worse(o["p95_wait"], f["p95_wait"]), o["node_min"] / f["node_min"]
            sweep_wait, sweep_nm = max(sweep_wait, w), max(sweep_nm, n)
            cells.append(f"{w:5.2f}x / {n:4.2f}x" + (" !" if w > 1 or n > 1 else "  "))
        print(f"  {m:4d} min" + "".join(f"{c:>20}" for c in cells))
    print("  ! marks a gap where ours waits longer or uses more node-minutes than the formula")
    print()

    wait_ratio = max(results[t]["ours"]["p95_wait"] / results[t]["formula"]["p95_wait"]
                     for t in ("burst", "office day"))
    nm_ratio = max(results[t]["ours"]["node_min"] / results[t]["formula"]["node_min"] for t in TRACES)
    sparse_nm = max(results[t]["ours"]["node_min"] / results[t]["formula"]["node_min"] for t in SPARSE)
    sparse_wait = max(results[t]["ours"]["p95_wait"] / results[t]["formula"]["p95_wait"] for t in SPARSE)
    compared = [*TRACES, *SLOT_TRACES]
    vs_before_wait = max(worse(slot_results[t]["after"]["ours"]["p95_wait"],
                               slot_results[t]["before"]["ours"]["p95_wait"]) for t in compared)
    vs_before_nm = max(slot_results[t]["after"]["ours"]["node_min"] / slot_results[t]["before"]["ours"]["node_min"]
                       for t in compared)
    memos_nm = slot_results["memos"]["after"]["ours"]["node_min"] / slot_results["memos"]["before"]["ours"]["node_min"]
    print(f"p95_wait_vs_formula={wait_ratio:.2f} node_minutes_vs_formula={nm_ratio:.2f} "
          f"sparse_node_minutes_vs_formula={sparse_nm:.2f} sparse_p95_wait_vs_formula={sparse_wait:.2f} "
          f"p95_wait_vs_before={vs_before_wait:.2f} node_minutes_vs_before={vs_before_nm:.2f} "
          f"memos_node_minutes_vs_before={memos_nm:.2f} sweep_p95_wait_vs_formula={sweep_wait:.2f} "
          f"sweep_node_minutes_vs_formula={sweep_nm:.2f}")


if __name__ == "__main__":
    main()
