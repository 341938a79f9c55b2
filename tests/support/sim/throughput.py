"""A deterministic fluid model of the pipeline under a steady stream of small files on Azure: tasks through the pool,
the monitor's task deletion, reconcile's pass over the input container, node disks, and the requests each part sends.

Modelling choices:

* Files land at a constant rate (1,000,000 a day by default, 11.57 a second), one second at a time. Each is one
  Batch task (one `add_task`), queued FIFO; the pool runs `nodes x slots` tasks at once and each task holds its slot
  for `slot_s` (Batch's per-task overhead plus download, runner, ffmpeg and upload). The model is a fluid: a second's
  files start when slots are free, and complete in the same second's count (latency is not what it measures).
* The monitor runs every `tick_s` (MONITOR_SCHEDULE). It deletes completed tasks older than TASK_RETENTION_SECONDS,
  oldest first, at most the code's `cleanup.delete_bound` a run (from the run's completed count and the previous
  run's), or a fixed bound (DELETE_BATCH, the design before the fixes). The time budget is not modelled: at the
  assumed 50 ms a DELETE and 8 at once, MAX_DELETES_PER_RUN fit in it by construction.
* A completed task's folder (with its output.mp3; the runner deletes input.mp4) stays on its node until the task is
  deleted or its retention ends, whichever is first: that is the node disk figure.
* Reconcile runs every `reconcile_s` (RECONCILE_SCHEDULE) and looks at the code's `reconcile.run_size` input blobs
  from where it stopped (its share of a pass every PASS_SECONDS, doubling until a first pass is counted), capped by
  what its run_seconds() (half the function timeout) list at LIST_PAGE_S a page of inputs and one of outputs; or a
  fixed RECONCILE_BATCH (before).
  Blob names are random, so the container is the key interval [0, 1) with blobs spread evenly: a run moves
  the marker by budget / blobs-in-container and a new blob lands anywhere, ahead of the marker or behind it. Probe
  files (seeded, at random keys and times) tell how long a file waits before a pass looks at it: a missed event is
  converted only then.
"""

from __future__ import annotations

import math
import random
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

# --- The code's own constants: the ONE place this benchmark imports them (fix these paths when modules move). ------
from shared.adapters.batch.azure_tasks import LIST_PAGE_SIZE
from shared.domain.task_slots import required_slots
from shared.run_deadline import run_seconds
from shared.settings import DEFAULTS, URL_GRACE_SECONDS, Settings, vcpus_of
from shared.usecases.monitor.cleanup import DELETE_BATCH, MAX_DELETES_PER_RUN, delete_bound
from shared.usecases.monitor.renewal import CHECK_EVERY_SECONDS as RENEW_CHECK_EVERY_SECONDS
from shared.usecases.monitor.renewal import RENEW_BATCH, RENEW_MARGIN_SECONDS
from shared.usecases.reconcile import PAGE_SIZE as RECONCILE_PAGE
from shared.usecases.reconcile import PASS_SECONDS as RECONCILE_PASS_S
from shared.usecases.reconcile import run_size
from tests.support.sim.workloads import MEMO_BYTES

REPO = Path(__file__).resolve().parents[3]
FUNCTIONAPP_BICEP = REPO / "infra" / "modules" / "functionapp.bicep"
MAIN_BICEP = REPO / "infra" / "main.bicep"


def ncrontab_interval_s(expr: str) -> int:
    """The period of a six-field NCRONTAB schedule of the forms the app uses ("0 * * * * *", "30 */10 * * * *")."""
    fields = expr.split()
    if len(fields) != 6:
        raise ValueError(f"not a six-field NCRONTAB expression: {expr!r}")
    for unit, f in zip((1, 60, 3600), fields[:3], strict=True):
        if f == "*":
            return unit
        if f.startswith("*/"):
            return unit * int(f[2:])
    return 86400


def bicep_app_setting(name: str) -> str:
    """The value the deployment (infra/modules/functionapp.bicep) gives an app setting, when it is a literal."""
    m = re.search(rf"name: '{re.escape(name)}'\s*\n\s*value: '([^']*)'", FUNCTIONAPP_BICEP.read_text())
    if m is None:
        raise LookupError(f"{name} has no literal value in {FUNCTIONAPP_BICEP}")
    return m.group(1)


def bicep_param_default(name: str) -> str:
    m = re.search(rf"^param {re.escape(name)} \w+ = (\S+)", MAIN_BICEP.read_text(), re.MULTILINE)
    if m is None:
        raise LookupError(f"param {name} has no default in {MAIN_BICEP}")
    return m.group(1).strip("'")




@dataclass(frozen=True)
class Code:
    """What today's code and deployment set, read from them (never retyped here)."""

    delete_batch: int = DELETE_BATCH
    max_deletes_per_run: int = MAX_DELETES_PER_RUN
    reconcile_pass_s: float = RECONCILE_PASS_S
    reconcile_page: int = RECONCILE_PAGE
    list_page_size: int = LIST_PAGE_SIZE
    renew_batch: int = RENEW_BATCH
    renew_check_s: int = RENEW_CHECK_EVERY_SECONDS
    renew_after_s: int = URL_GRACE_SECONDS - RENEW_MARGIN_SECONDS
    monitor_s: int = ncrontab_interval_s(DEFAULTS["MONITOR_SCHEDULE"])
    reconcile_s: int = ncrontab_interval_s(DEFAULTS["RECONCILE_SCHEDULE"])
    reconcile_budget: int = int(DEFAULTS["RECONCILE_BATCH"])
    retention_local_s: int = int(DEFAULTS["TASK_RETENTION_SECONDS"])
    retention_azure_s: int = int(bicep_app_setting("TASK_RETENTION_SECONDS"))
    max_nodes_azure: int = int(bicep_param_default("batchMaxNodes"))
    vm_size: str = DEFAULTS["BATCH_VM_SIZE"]
    vcpus: int = vcpus_of(DEFAULTS["BATCH_VM_SIZE"]) or 1
    slots_before: int = vcpus_of(DEFAULTS["BATCH_VM_SIZE"]) or 1  # a slot per vCPU, before issue 29
    slots_default: int = Settings.from_env({}).slots_per_node  # BATCH_SLOTS_PER_NODE's default now
    memo_slots: int = required_slots(MEMO_BYTES, Settings.from_env({}).slots_per_node,
                                     vcpus_of(DEFAULTS["BATCH_VM_SIZE"]))  # what a 2 s memo's task asks for


CODE = Code()


@dataclass(frozen=True)
class Load:
    files_per_day: float = 1_000_000.0
    horizon_s: int = 86400
    mp3_bytes: int = 50_000


@dataclass(frozen=True)
class Pool:
    nodes: int
    slots: int
    slot_s: float  # how long one task holds its slot


LIST_PAGE_S = 0.5  # one List Blobs page of 5,000 names, in-region (assumption): bounds a reconcile run by time


@dataclass(frozen=True)
class Policy:
    """What the monitor and reconcile do each run: the code's own (paced, sized) or fixed constants (the design
    before issue 20's fixes: DELETE_BATCH a run, RECONCILE_BATCH a run)."""

    name: str
    retention_s: int
    delete_bound: int  # a fixed bound per run; ignored when `paced`
    reconcile_budget: int
    paced: bool = False  # the code's cleanup.delete_bound from the task counts of each run
    sized: bool = False  # the code's reconcile.run_size: a pass of the container every RECONCILE_PASS_S


@dataclass
class Series:
    """Samples of the run, one a monitor tick."""

    t: list[float] = field(default_factory=list)
    job_tasks: list[int] = field(default_factory=list)
    completed_kept: list[int] = field(default_factory=list)
    queued: list[float] = field(default_factory=list)
    folders_per_node: list[float] = field(default_factory=list)


@dataclass
class Outcome:
    series: Series
    arrived: int
    deleted: int
    delete_requests: int
    completed_list_requests: int
    reconcile_checked: int
    reconcile_runs: int
    reconcile_wraps: int
    probe_waits: list[float]  # seconds from landing to first look by reconcile (inf: never within the horizon)
    probes: int
    queue_end: float
    renew_due: int  # queued tasks older than the renewal age at the end (SAS mode would need to renew them)

    def at_hour(self, hour: float) -> int:
        """Tasks in the job at the last sample at or before `hour`."""
        best = 0
        for t, n in zip(self.series.t, self.series.job_tasks, strict=True):
            if t <= hour * 3600:
                best = n
        return best

    def probes_seen_within(self, seconds: float) -> float:
        return sum(1 for w in self.probe_waits if w <= seconds) / max(self.probes, 1)


def simulate(load: Load, pool: Pool, policy: Policy, *, monitor_s: int = CODE.monitor_s,
             reconcile_s: int = CODE.reconcile_s, initial_blobs: int = 0, probes: int = 2000,
             seed: int = 1) -> Outcome:
    """Run the load for `load.horizon_s` seconds, one-second steps; deterministic for a seed."""
    rate = load.files_per_day / 86400.0
    capacity_per_s = pool.nodes * pool.slots / pool.slot_s
    rng = random.Random(f"probes-{seed}")
    probe_list = sorted((rng.uniform(0, load.horizon_s), rng.random()) for _ in range(probes))
    probe_seen: list[float | None] = [None] * probes
    arrived_total = 0
    queue = 0.0
    queue_ages: deque[list[float]] = deque()  # [arrival second, count still queued], oldest first
    done_bins: deque[list[float]] = deque()  # [tick that saw them complete, count not yet deleted], oldest first
    kept = 0.0  # completed tasks still in the job
    tick_done = 0.0
    deleted = delete_requests = list_requests = 0
    blobs = float(initial_blobs)
    marker = 0.0
    checked = runs = wraps = 0
    last_pass_blobs = previous_look = 0
    series = Series()
    for t in range(1, load.horizon_s + 1):
        new = math.floor(rate * t) - math.floor(rate * (t - 1))
        arrived_total += new
        blobs += new
        queue += new
        queue_ages.append([float(t), float(new)])
        done = min(queue, capacity_per_s)
        queue -= done
        left = done
        while left > 1e-9 and queue_ages:
            take = min(left, queue_ages[0][1])
            queue_ages[0][1] -= take
            left -= take
            if queue_ages[0][1] <= 1e-9:
                queue_ages.popleft()
        tick_done += done
        kept += done
        if t % monitor_s == 0:
            done_bins.append([float(t), tick_done])  # one bin per tick: the tick's completions
            tick_done_now, tick_done = tick_done, 0.0
            cutoff = t - policy.retention_s
            budget = float(delete_bound(round(kept), round(kept - tick_done_now)) if policy.paced
                           else policy.delete_bound)
            if kept > 0:
                list_requests += 1  # one completed-tasks listing per run with completed tasks (today's code)
            while budget > 1e-9 and done_bins and done_bins[0][0] < cutoff:
                take = min(budget, done_bins[0][1])
                done_bins[0][1] -= take
                budget -= take
                kept -= take
                deleted += round(take)
                if done_bins[0][1] <= 1e-9:
                    done_bins.popleft()
            delete_requests = deleted
            # folders on nodes: completed tasks neither deleted nor past their retention
            folders = sum(n for s, n in done_bins if s >= cutoff)
            series.t.append(t)
            running = min(done * pool.slot_s, pool.nodes * pool.slots)
            series.job_tasks.append(round(queue + kept + running))
            series.completed_kept.append(round(kept))
            series.queued.append(queue)
            series.folders_per_node.append(folders / pool.nodes)
        if t % reconcile_s == 0:
            runs += 1
            start = marker
            want = float(policy.reconcile_budget)
            if policy.sized:
                want = float(min(run_size(policy.reconcile_budget, last_pass_blobs, reconcile_s, previous_look),
                                 run_seconds() / (2 * LIST_PAGE_S) * RECONCILE_PAGE))
            look = min(want, blobs * (1.0 - marker))
            previous_look = round(look)
            checked += round(look)
            marker = marker + look / blobs if blobs else 1.0
            end = marker
            if marker >= 1.0 - 1e-12:
                wraps += 1
                last_pass_blobs = round(blobs)
                marker = 0.0
                end = 1.0
            for i, (landed, key) in enumerate(probe_list):
                if landed > t:
                    break
                if probe_seen[i] is None and start <= key < end:
                    probe_seen[i] = t - landed
    renew_due = round(sum(n for s, n in queue_ages if load.horizon_s - s > CODE.renew_after_s))
    waits = [w if w is not None else math.inf for w in probe_seen]
    return Outcome(series, arrived_total, deleted, delete_requests, list_requests, checked, runs, wraps, waits,
                   probes, queue, renew_due)


# --- The design before issue 20's fixes, for the "before" column (its constants as they were). ---------------------

BEFORE_DELETE_BOUND = DELETE_BATCH  # one page of at most 100 completed tasks a run, deleted one after another
BEFORE_RETENTION_AZURE_S = 604800  # infra/modules/functionapp.bicep set 7 days (the settings default is 900)


def nodes_for(files_per_day: float, slots: int, slot_s: float, utilisation: float = 0.8) -> int:
    """Nodes that keep up with the load with slots busy `utilisation` of the time."""
    busy_slots = files_per_day / 86400.0 * slot_s
    return max(1, math.ceil(busy_slots / (slots * utilisation)))
