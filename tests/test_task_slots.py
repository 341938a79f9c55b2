"""Tasks ask for the slots their work needs: the rule, what submit sends Batch, and the local gateway honouring it."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
from azure.batch import models as bm

from devhost.azurite import Azurite
from localbatch.gateway import LocalBatchGateway
from shared.domain.task_slots import core_slots, required_slots, size_thresholds
from shared.ports.batch import PoolSpec, TaskSpec
from shared.settings import Settings
from tests.support.batch_standin import BatchStandin
from tests.test_monitor_requests import World, make_world, submit

pytest_plugins = ["tests.support.batch_fixtures"]

MEMO = 62_000  # a 2 s voice memo (docs/many-files-on-azure.md)
RECORDING = 30_000_000  # an hour of 64 kbit/s speech


def test_a_memo_takes_one_slot_and_a_long_recording_a_cores_worth() -> None:
    s = Settings.from_env({})  # standard_d2s_v3: 2 vCPUs, 8 slots by default
    assert s.slots_per_node == 8 and core_slots(8, 2) == 4
    assert required_slots(MEMO, s.slots_per_node, 2) == 1
    assert required_slots(RECORDING, s.slots_per_node, 2) == 4
    assert required_slots(None, s.slots_per_node, 2) == 4  # unknown size: a core's worth, as before slots
    assert [required_slots(n, 2, 2) for n in (MEMO, RECORDING)] == [1, 1]  # a slot per vCPU: a slot is a core


def test_the_thresholds_rise_with_size_and_the_rule_meets_them() -> None:
    thresholds = size_thresholds(8, 2)
    assert [slots for slots, _ in thresholds] == [2, 3, 4]
    sizes = [size for _, size in thresholds]
    assert sizes == sorted(sizes) and sizes[0] > MEMO and sizes[-1] < RECORDING
    for slots, size in thresholds:
        assert required_slots(size, 8, 2) == slots
        assert required_slots(size - 1, 8, 2) == slots - 1


def test_never_more_slots_than_the_node_has() -> None:
    assert required_slots(RECORDING, 3, 1) == 3
    assert required_slots(RECORDING, 1, None) == 1


# -- what submit sends Batch -------------------------------------------------------------------------------------

@pytest.fixture
def default_slots(azurite: Azurite, batch_standin: BatchStandin) -> Iterator[World]:
    w = make_world(azurite, batch_standin, BATCH_SLOTS_PER_NODE="")  # the default: 4 x vCPUs
    yield w
    w.deps.gateway.close()  # type: ignore[attr-defined]


def _sent_slots(w: World, task_id: str) -> int:
    body = next(r.body for r in w.standin.sent("POST", f"/jobs/{w.settings.job_id}/tasks") if r.body["id"] == task_id)
    return body["requiredSlots"]


def test_submit_asks_batch_for_the_slots_of_the_inputs_size(default_slots: World) -> None:
    w = default_slots
    w.standin.add_pool(w.settings.pool_id, taskSlotsPerNode=w.settings.slots_per_node)
    memo, _ = submit(w, "memo.mp4", b"m" * MEMO)
    long, _ = submit(w, "lecture.mp4", b"l" * 3_000_000)
    assert (_sent_slots(w, memo), _sent_slots(w, long)) == (1, 4)


def test_a_pool_made_with_fewer_slots_gets_tasks_it_can_run(default_slots: World) -> None:
    """A pool made before the default rose (2 slots a node) keeps them (taskSlotsPerNode is fixed at creation):
    a long file asks for at most those, never more (Batch would accept the task and never run it)."""
    w = default_slots
    w.standin.add_pool(w.settings.pool_id, taskSlotsPerNode=2)
    long, _ = submit(w, "lecture.mp4", b"l" * 3_000_000)
    memo, _ = submit(w, "memo.mp4", b"m" * MEMO)
    assert (_sent_slots(w, long), _sent_slots(w, memo)) == (2, 1)
    assert len(w.standin.sent("GET", f"/pools/{w.settings.pool_id}")) == 1  # read once, then kept


# -- the local gateway ----------------------------------------------------------------------------------------------

def _most_at_once(gw: LocalBatchGateway, slots: int, count: int) -> int:
    command = "ffmpeg -nostdin -hide_banner -re -f lavfi -i sine=duration=1 -f null -"
    for i in range(count):
        gw.add_task(TaskSpec(id=f"s{slots}-{i}", display_name="t", command_line=command, resource_files=(),
                             output_files=(), max_task_retry_count=0, required_slots=slots))
    most, deadline = 0, time.monotonic() + 60
    while gw.task_counts().active + gw.task_counts().running and time.monotonic() < deadline:
        most = max(most, gw.task_counts().running)
        time.sleep(0.02)
    assert gw.task_counts().succeeded == gw.task_counts().completed
    return most


def test_the_local_gateway_runs_tasks_in_the_slots_they_ask_for(tmp_path) -> None:
    gw = LocalBatchGateway(tmp_path, max_slots=4)
    try:
        gw.ensure_pool(PoolSpec(id=gw.pool_id, slots_per_node=4, initial_dedicated_nodes=1))
        gw.ensure_job(gw.pool_id)
        assert _most_at_once(gw, 1, 4) == 4  # four memos share the four slots
        assert _most_at_once(gw, 2, 4) == 2
        assert _most_at_once(gw, 8, 2) == 1  # more than this machine's slots: it runs alone, never stuck
    finally:
        gw.close()


# -- the pool policy counts slots ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "nodes"), [(MEMO, 1), (2_000_000, 3)])
def test_the_monitor_sizes_the_pool_by_the_slots_queued(default_slots: World, size: int, nodes: int) -> None:
    """Ten files queued on 8-slot nodes: ten memos (a slot each) fit on one node with queues 2 deep; ten long files
    (a core's worth each, 40 slots) need three. Counted in tasks, both would get one."""
    w = default_slots
    w.standin.add_pool(w.settings.pool_id, taskSlotsPerNode=w.settings.slots_per_node)
    w.deps.gateway.ensure_job(w.settings.pool_id)
    for i in range(10):
        submit(w, f"f{i}.mp4", bytes([i]) * size)
    result, _ = w.tick()
    assert result.target_nodes == nodes and w.resizes[-1]["targetDedicatedNodes"] == nodes


# -- Batch's contract in the stand-in ------------------------------------------------------------------------------

def test_batch_accepts_a_task_wanting_more_slots_than_a_node_has_and_never_runs_it(batch_standin: BatchStandin) -> None:
    """Through the real SDK: Batch does not validate requiredSlots at submit; such a task stays queued for ever (a
    schedule failure each try), which is why the adapter keeps requiredSlots within the pool's nodes."""
    batch_standin.add_pool("p", taskSlotsPerNode=2)
    gw = batch_standin.gateway(pool_id="p", job_id="j", slots_per_node=2)
    try:
        gw.ensure_job("p")
        for task_id, slots in (("fits", 2), ("too-big", 3)):
            gw.client.create_task("j", bm.BatchTaskCreateOptions(id=task_id, command_line="true",
                                                                  required_slots=slots))
        now = dt.datetime.now(dt.UTC)
        assert batch_standin.start_task("j", "fits", now) == "running"
        assert batch_standin.start_task("j", "too-big", now) == "active"
        assert [(e["id"], e["requiredSlots"]) for e in batch_standin.schedule_failures] == [("too-big", 3)]
        counts = gw.task_counts()
        assert (counts.active, counts.active_slots, counts.running, counts.running_slots) == (1, 3, 1, 2)
    finally:
        gw.close()
