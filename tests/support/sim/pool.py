"""A deterministic discrete-event model of one Azure Batch pool and the controllers that size it.

Modelling choices (the same for every policy unless a controller says otherwise):

* A resize that adds nodes bills each new node from the request. The node is allocated
  `allocation_s` later (240 s) and then runs the start task (`start_task_s`, 90 s for apt-get
  install ffmpeg) before it takes work.
* Slots, as Batch has them: a node has `slots_per_node` slots (taskSlotsPerNode) and `vcpus` cores; a task asks
  for `required_slots` from its input's size (shared.domain.task_slots, the code's own rule) and starts on a node
  only when that many are free. It holds them for Batch's per-task gap (half before its work: scheduling and the
  resource-file download; half after: the output upload and state report; no core) and its work (one core). A
  node's cores serve waiting work first come first served (the total a core does is the same as an OS's sharing;
  only the order differs). The defaults (2 slots, 2 vCPUs: one slot per vCPU, standard_d2s_v3 before issue 29)
  give every task one slot and a core of its own. Files, gaps and their sources: tests/support/sim/workloads.py.
* Scheduling: the queue is first come first served, but a task that fits no node's free slots lets a later one
  that fits go first (Batch fills free slots; it documents no head-of-line blocking); nodes are filled in turn
  (nodeFillType pack, as shared/adapters/batch/azure_pool.py sets).
* The pool's allocation state is "resizing" while any requested node is not yet allocated, or any
  node picked for removal is still finishing its task; otherwise "steady". (Batch reports steady
  once the VMs exist, while start tasks may still run; the model does the same.)
* Shrinking (nodeDeallocationOption = taskcompletion) removes nodes that do no work first: not yet
  allocated, then still starting, then idle, newest first; busy nodes finish their task and then
  go. A removed node stops billing the moment it goes (deallocation time is not billed).
  A grow while busy nodes are on their way out takes those back first.
* Tasks start the moment a ready node has their slots free (the scheduling latency is part of the gap), and the
  submit path adds the task the moment the file lands: the same for every policy.
* No failures, quotas or Spot preemption: every policy gets every node it asks for, and nodes are
  dedicated (the benchmark's settings use no Spot).
* Policies act on control events at fixed times: the static pool never; Batch's formula at its
  evaluation times, on 30 s samples of $PendingTasks (active + running) that it sees 60 s late;
  our policy on a 1-minute timer that sees exact counts at that instant (and, optionally, on a
  submit-path nudge). A resize issued by any policy takes effect at once (the API call's own
  latency of a second or two is ignored for all of them).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.domain.scaling import (
    ScalingSettings,
    decide,
    learn_arrivals,
    observe,
    typical_gap,
    work_seen,
)
from shared.domain.task_slots import required_slots
from shared.ports.batch import PoolState
from tests.support.sim.workloads import GAP_MEDIAN_S, GAP_SIGMA, VIDEOS, Files, gap_draw

# Event priorities at the same instant: tasks finish, nodes become ready, files land, controllers act.
_DONE, _READY, _ARRIVAL, _CONTROL = 0, 1, 2, 3


@dataclass(frozen=True)
class SimParams:
    """The fixed, shared parameters of the simulated pool."""

    allocation_s: float = 240.0
    start_task_s: float = 90.0
    max_nodes: int = 25
    slots_per_node: int = 2
    vcpus: int = 2
    gap_median_s: float = GAP_MEDIAN_S  # Batch's per-task gap; 0: none
    gap_sigma: float = GAP_SIGMA


@dataclass
class Node:
    id: int
    requested: float
    allocated: float
    ready: float
    released: float | None = None
    busy: int = 0  # slots its running tasks hold (at most slots_per_node)
    tasks: int = 0  # tasks running on it
    leaving: bool = False
    cores_free: int = 0
    core_queue: deque[Task] = field(default_factory=deque)  # tasks past their first gap waiting for a core


@dataclass
class Task:
    id: int
    arrival: float
    work: float  # core seconds
    gap: float  # Batch's per-task gap: slots held, no core
    slots: int  # requiredSlots
    start: float | None = None
    done: float | None = None


@dataclass
class Result:
    """What one run of one policy on one trace produced."""

    waits: list[float]
    end_to_end: list[float]
    node_seconds: float
    resizes: int
    log: list[str] = field(default_factory=list)


class Sim:
    """The pool, its queue and the event loop; a controller decides sizes through `resize`."""

    def __init__(self, params: SimParams, arrivals: tuple[float, ...], seed: int, files: Files = VIDEOS) -> None:
        self.params = params
        rng, gaps = random.Random(f"tasks-{seed}"), random.Random(f"gaps-{seed}")
        self.tasks = []
        for i, t in enumerate(arrivals):
            work, size = files.draw(rng)
            slots = required_slots(size, params.slots_per_node, params.vcpus)
            self.tasks.append(Task(i, t, work, gap_draw(gaps, params.gap_median_s, params.gap_sigma), slots))
        self.queued_slots = 0
        self.queued_sizes: Counter[int] = Counter()  # queued tasks by the slots they ask for
        self.nodes: list[Node] = []
        self.target = 0
        self.queue: deque[Task] = deque()
        self.events: list[tuple[float, int, int, Callable[[float], None]]] = []
        self.seq = 0
        self.now = 0.0
        self.resizes = 0
        self.finished = 0
        self.on_arrival: Callable[[float], None] | None = None

    # --- events -------------------------------------------------------------------------------
    def at(self, t: float, prio: int, fn: Callable[[float], None]) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, prio, self.seq, fn))

    def run(self, horizon: float, controller: Controller) -> Result:
        for task in self.tasks:
            self.at(task.arrival, _ARRIVAL, lambda t, task=task: self._arrive(task, t))
        controller.start(self)
        end = horizon
        while self.events:
            t, prio, _, fn = heapq.heappop(self.events)
            if t > horizon and self.finished == len(self.tasks) and prio == _CONTROL:
                break
            self.now = t
            fn(t)
            self._dispatch(t)
            end = max(end, t)
        billed = sum((n.released if n.released is not None else end) - n.requested for n in self.nodes)
        waits = [task.start - task.arrival for task in self.tasks if task.start is not None]
        e2e = [task.done - task.arrival for task in self.tasks if task.done is not None]
        assert len(e2e) == len(self.tasks), "every task must finish"
        return Result(waits, e2e, billed, self.resizes, getattr(controller, "log", []))

    def _arrive(self, task: Task, t: float) -> None:
        self.queue.append(task)
        self.queued_slots += task.slots
        self.queued_sizes[task.slots] += 1
        if self.on_arrival is not None:
            self.on_arrival(t)

    def _want_core(self, node: Node, task: Task, t: float) -> None:
        if node.cores_free > 0:
            node.cores_free -= 1
            self.at(t + task.work, _DONE, lambda t, node=node, task=task: self._computed(node, task, t))
        else:
            node.core_queue.append(task)

    def _computed(self, node: Node, task: Task, t: float) -> None:
        if node.core_queue:  # the core goes to the next task waiting for one
            nxt = node.core_queue.popleft()
            self.at(t + nxt.work, _DONE, lambda t, node=node, task=nxt: self._computed(node, task, t))
        else:
            node.cores_free += 1
        self.at(t + task.gap / 2, _DONE, lambda t, node=node, task=task: self._finish(node, task, t))

    def _finish(self, node: Node, task: Task, t: float) -> None:
        task.done = t
        node.busy -= task.slots
        node.tasks -= 1
        self.finished += 1
        if node.leaving and node.tasks == 0:
            node.released = t

    def _start(self, node: Node, task: Task, t: float) -> None:
        task.start = t
        node.busy += task.slots
        node.tasks += 1
        self.queued_slots -= task.slots
        self.queued_sizes[task.slots] -= 1
        self.at(t + task.gap / 2, _DONE, lambda t, node=node, task=task: self._want_core(node, task, t))

    def _dispatch(self, t: float) -> None:
        if not self.queue:
            return
        slots = max(self.params.slots_per_node, 1)
        ready = [n for n in self.nodes if n.released is None and not n.leaving and n.ready <= t and n.busy < slots]
        smallest = min((k for k, v in self.queued_sizes.items() if v > 0), default=slots)
        if not ready or max(slots - n.busy for n in ready) < smallest:
            return  # nothing queued fits anywhere (the common case under load: no scan)
        skipped: list[Task] = []
        while self.queue and ready:
            task = self.queue.popleft()
            node = next((n for n in ready if slots - n.busy >= task.slots), None)
            if node is None:
                skipped.append(task)  # fits no node now; a later task that fits goes first
                continue
            self._start(node, task, t)
            if node.busy >= slots:
                ready.remove(node)
        self.queue.extendleft(reversed(skipped))

    # --- what Batch would report --------------------------------------------------------------
    def alive(self) -> list[Node]:
        return [n for n in self.nodes if n.released is None]

    def members(self) -> list[Node]:
        return [n for n in self.nodes if n.released is None and not n.leaving]

    def allocation_state(self, t: float) -> str:
        alive = self.alive()
        if any(n.allocated > t or n.leaving for n in alive):
            return "resizing"
        return "steady"

    def running(self) -> int:
        return sum(n.tasks for n in self.nodes if n.released is None)

    def running_slots(self) -> int:
        return sum(n.busy for n in self.nodes if n.released is None)

    def pending(self) -> int:
        """Batch's $PendingTasks: active (queued) + running tasks."""
        return len(self.queue) + self.running()

    # --- the one control -----------------------------------------------------------------------
    def add_ready_nodes(self, count: int, t: float) -> None:
        """Nodes that exist and have started already (the static pool before the trace begins)."""
        for _ in range(count):
            self.nodes.append(Node(len(self.nodes), t, t, t, cores_free=self.params.vcpus))
        self.target += count

    def resize(self, target: int, t: float) -> None:
        target = max(0, min(self.params.max_nodes, target))
        if target == self.target:
            return
        self.resizes += 1
        self.target = target
        members = self.members()
        if target > len(members):
            want = target - len(members)
            for node in self.nodes:
                if want and node.released is None and node.leaving:
                    node.leaving = False
                    want -= 1
            for _ in range(want):
                alloc = t + self.params.allocation_s
                node = Node(len(self.nodes), t, alloc, alloc + self.params.start_task_s, cores_free=self.params.vcpus)
                self.nodes.append(node)
                self.at(node.ready, _READY, lambda t: None)  # wake the dispatcher when it is ready
        elif target < len(members):
            drop = len(members) - target

            def rank(n: Node) -> tuple[int, float]:
                if n.allocated > t:
                    return 0, -n.requested
                if n.ready > t:
                    return 1, -n.requested
                if n.tasks == 0:
                    return 2, -n.requested
                return 3, -n.requested

            for node in sorted(members, key=rank)[:drop]:
                if node.tasks == 0:
                    node.released = t
                else:
                    node.leaving = True


class Controller:
    """Something that sizes the pool: schedules its own control events on the sim."""

    name = "controller"

    def start(self, sim: Sim) -> None:
        raise NotImplementedError


class StaticPool(Controller):
    """The tutorial: a fixed pool, up and started before the first file lands, on all the time."""

    def __init__(self, nodes: int = 5) -> None:
        self.nodes = nodes
        self.name = f"static {nodes}"

    def start(self, sim: Sim) -> None:
        sim.add_ready_nodes(self.nodes, 0.0)


class AutoscaleFormula(Controller):
    """Batch's documented pending-tasks sample formula, evaluated by the Batch service.

    $PendingTasks is sampled every `sample_s` and a sample becomes visible `delay_s` after it is
    taken. GetSample(180 s) / GetSamplePercent(180 s) are read over the newest 180 s of *visible*
    history, i.e. the samples taken in (t - delay - 180, t - delay]. That is the generous reading:
    reading the window as (t - 180, t] would leave only 4 of 6 samples visible (67% < 70%) at every
    evaluation and the formula would never leave startingNumberOfVMs. The fractional result is
    truncated to a whole node count (`rounding="floor"`); `rounding="ceil"` is the other reading.
    Evaluations also apply while the pool is resizing (again the generous choice).
    """

    def __init__(
        self,
        first_eval_s: float = 150.0,
        interval_s: float = 300.0,
        sample_s: float = 30.0,
        delay_s: float = 60.0,
        window_s: float = 180.0,
        starting: int = 1,
        maximum: int = 25,
        rounding: str = "floor",
        history_s: float = 0.0,
    ) -> None:
        self.first_eval_s, self.interval_s = first_eval_s, interval_s
        self.sample_s, self.delay_s, self.window_s = sample_s, delay_s, window_s
        self.starting, self.maximum, self.rounding = starting, maximum, rounding
        self.history_s = history_s
        # Samples from before the trace (pool idle, nothing pending) when the pool existed already.
        self.samples: list[tuple[float, int]] = [(-k * sample_s, 0) for k in range(int(history_s // sample_s), 0, -1)]
        self.name = "formula" if rounding == "floor" else f"formula ({rounding})"

    def start(self, sim: Sim) -> None:
        self.sim = sim
        sim.at(0.0, _CONTROL, self._sample)
        sim.at(self.first_eval_s, _CONTROL, self._evaluate)

    def _sample(self, t: float) -> None:
        self.samples.append((t, self.sim.pending()))
        self.sim.at(t + self.sample_s, _CONTROL, self._sample)

    def _evaluate(self, t: float) -> None:
        newest = t - self.delay_s
        visible = [v for s, v in self.samples if newest - self.window_s < s <= newest]
        percent = 100.0 * len(visible) / (self.window_s / self.sample_s)
        value = float(self.starting) if percent < 70 or not visible else sum(visible) / len(visible)
        target = min(float(self.maximum), value)  # the documented formula: one node per pending task
        nodes = math.floor(target) if self.rounding == "floor" else math.ceil(target)
        self.sim.resize(nodes, t)
        self.sim.at(t + self.interval_s, _CONTROL, self._evaluate)


class OurPolicy(Controller):
    """shared.domain.scaling.decide on a 1-minute timer, optionally nudged by the submit path.

    The monitor sees exact task counts (get_job_task_counts) and the pool's allocation state; it
    remembers when it last saw work (active + running > 0) and passes that as `last_work_seen`.
    It also counts tasks that completed since its previous tick (from the cumulative `completed`
    task count) as work seen, so a 30 s task that starts and ends between two ticks still holds the
    idle grace. It can only resize a steady pool.

    The nudge, when on, models the submit path: a file lands while the pool's target is 0 and the
    pool is steady, so it runs the same `decide` at once (or `nudge_delay_s` later, e.g. through a
    storage-queue message with a visibility delay, so that a burst is counted, not its first file).
    """

    def __init__(self, settings: ScalingSettings, tick_s: float = 60.0, phase_s: float = 30.0,
                 nudge: bool = False, nudge_delay_s: float = 0.0, count_slots: bool = True) -> None:
        self.settings, self.tick_s, self.phase_s, self.nudge = settings, tick_s, phase_s, nudge
        self.count_slots = count_slots  # read taskSlotCounts (issue 29) or count tasks, a slot each (before)
        self.nudge_delay_s = nudge_delay_s
        self.nudge_pending = False
        self.finished_seen = 0
        self.known = 0  # tasks seen so far (queued + running + finished), to learn arrivals as the monitor does
        self.arrivals: list[float] = []
        self.last_work_seen: float | None = None
        self.log: list[str] = []

    def start(self, sim: Sim) -> None:
        self.sim = sim
        sim.at(self.phase_s, _CONTROL, self._tick)
        if self.nudge:
            sim.on_arrival = self._nudge

    def _decide(self, t: float) -> None:
        sim = self.sim
        # The same bookkeeping as the monitor (shared.usecases.monitor.tick.monitor_tick), from the same helpers.
        slots = (sim.queued_slots, sim.running_slots()) if self.count_slots else (None, None)
        demand = observe(len(sim.queue), sim.running(), sim.finished, self.finished_seen, *slots)
        self.finished_seen = sim.finished
        known = len(sim.queue) + sim.running() + sim.finished
        self.arrivals = learn_arrivals(self.arrivals, t, known - self.known)
        self.known = known
        self.last_work_seen = work_seen(demand, t, self.last_work_seen)
        state = sim.allocation_state(t)
        current = sum(1 for n in sim.alive() if n.allocated <= t)
        pool = PoolState(state, current, 0, sim.target, 0)
        decision = decide(demand, pool, self.settings, t, self.last_work_seen, typical_gap(self.arrivals),
                          self.arrivals[-1] if self.arrivals else None)
        if decision.resize:
            sim.resize(decision.dedicated + decision.spot, t)
            self.log.append(f"{t:7.0f}s {decision.reason}")

    def _tick(self, t: float) -> None:
        self._decide(t)
        self.sim.at(t + self.tick_s, _CONTROL, self._tick)

    def _nudge(self, t: float) -> None:
        if self.nudge_pending or self.sim.target != 0 or self.sim.allocation_state(t) != "steady":
            return
        if self.nudge_delay_s <= 0:
            self._decide(t)
            return
        self.nudge_pending = True
        self.sim.at(t + self.nudge_delay_s, _CONTROL, self._delayed_nudge)

    def _delayed_nudge(self, t: float) -> None:
        self.nudge_pending = False
        if self.sim.target == 0 and self.sim.allocation_state(t) == "steady":
            self._decide(t)
