"""The Azure adapter's pool operations: state (size, resize errors, node health), resize, stop, remove nodes."""

from __future__ import annotations

import logging
import time
from typing import Any

from azure.batch import models as bm
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.adapters.batch.azure_errors import AdapterBase, error_text
from shared.ports.batch import BrokenNode, GatewayError, JobNotFound, PoolBusy, PoolState, ResizeError

log = logging.getLogger("shared.adapters.batch.azure")

POOL_STATE_FIELDS = [
    "id",
    "state",
    "allocationState",
    "currentDedicatedNodes",
    "currentLowPriorityNodes",
    "targetDedicatedNodes",
    "targetLowPriorityNodes",
    "taskSlotsPerNode",
    "enableAutoScale",
    "resizeErrors",
]
# Node states that count in the pool's size but take no tasks; Batch does not replace such nodes by itself.
BROKEN_STATES = ("starttaskfailed", "unusable", "unknown")
BROKEN_FILTER = " or ".join(f"state eq '{s}'" for s in BROKEN_STATES)
NODE_FIELDS = ["id", "state", "startTaskInfo", "errors"]
STDERR_TAIL_CHARS = 2000
REMOVE_BATCH = 100  # Batch removes at most 100 nodes per request
STATE_REUSE_SECONDS = 30.0  # resize() trusts a pool_state() answer this fresh


def _lower(value: Any) -> str:
    return str(getattr(value, "value", value) or "").lower()


class PoolOperations(AdapterBase):
    """The pool's size and health."""

    _last_state: tuple[float, PoolState | None]
    _pool_slots: int | None

    def pool_state(self) -> PoolState | None:
        """GET /pools/{id} ($select: size, allocation state, resize errors) and GET /nodecounts: two requests."""
        try:
            pool = self._call("get pool", self.client.get_pool, self.pool_id, select=POOL_STATE_FIELDS)
        except ResourceNotFoundError:
            return None
        except ResourceExistsError as exc:
            raise self._unexpected("get pool", exc) from exc
        preempted, broken = self._node_health()
        state = PoolState(
            allocation_state=_lower(pool.allocation_state) or "steady",
            current_dedicated=pool.current_dedicated_nodes or 0,
            current_spot=pool.current_low_priority_nodes or 0,
            target_dedicated=pool.target_dedicated_nodes or 0,
            target_spot=pool.target_low_priority_nodes or 0,
            slots_per_node=pool.task_slots_per_node or self.slots_per_node,
            auto_scale=bool(pool.enable_auto_scale),
            preempted=preempted,
            broken=broken,
            resize_errors=tuple(ResizeError(e.code or "", e.message or "") for e in (pool.resize_errors or [])),
            deleting=_lower(pool.state) == "deleting",
        )
        self._last_state = (time.monotonic(), state)
        if pool.task_slots_per_node:
            self._pool_slots = pool.task_slots_per_node  # what add_task keeps requiredSlots within
        return state

    def _node_health(self) -> tuple[int, int]:
        """(preempted Spot nodes, broken nodes) from one node-counts request, whatever the pool's size.

        Counts unavailable: (0, 0), and the timer goes on (the next run reads them again).
        """
        try:
            counts = self._call("get node counts", self.client.list_pool_node_counts,
                                filter=f"poolId eq '{self.pool_id}'")
            for entry in counts:
                if entry.pool_id.lower() != self.pool_id.lower():
                    continue
                broken = preempted = 0
                for kind in (entry.dedicated, entry.low_priority):
                    if kind is None:
                        continue
                    broken += (kind.start_task_failed or 0) + (kind.unusable or 0) + (kind.unknown or 0)
                preempted = (entry.low_priority.preempted or 0) if entry.low_priority is not None else 0
                return preempted, broken
        except (GatewayError, ResourceNotFoundError, ResourceExistsError) as exc:
            log.warning("node counts unknown this run: %s", exc)
        return 0, 0

    def _fresh_state(self) -> PoolState:
        # The monitor reads pool_state() just before deciding; reuse that answer instead of a second GET.
        seen_at, state = self._last_state
        if state is None or time.monotonic() - seen_at > STATE_REUSE_SECONDS:
            state = self.pool_state()
        if state is None:
            raise JobNotFound(f"Batch pool {self.pool_id} not found")
        return state

    def resize(self, dedicated: int, spot: int) -> None:
        state = self._fresh_state()
        if state.auto_scale:
            raise PoolBusy(f"Batch pool {self.pool_id} uses autoscale; not resizing it")
        if state.allocation_state != "steady":
            raise PoolBusy(f"Batch pool {self.pool_id} is {state.allocation_state}; resize later")
        options = bm.BatchPoolResizeOptions(
            target_dedicated_nodes=dedicated,
            target_low_priority_nodes=spot,
            node_deallocation_option=bm.BatchNodeDeallocationOption.TASK_COMPLETION,
        )
        self._pool_post("resize pool", "_resize_pool_internal", "resize", options.as_dict(), self.pool_id, options)
        log.info("Resizing Batch pool %s to %d dedicated + %d Spot nodes", self.pool_id, dedicated, spot)

    def stop_resize(self) -> None:
        """POST /pools/{id}/stopresize: the pool keeps the nodes it has and becomes steady (via stopping)."""
        self._pool_post("stop pool resize", "_stop_pool_resize_internal", "stopresize", None, self.pool_id)
        log.info("Stopped the resize of Batch pool %s", self.pool_id)

    def remove_nodes(self, node_ids: list[str]) -> None:
        """POST /pools/{id}/removenodes (100 at most per request); the pool's target drops by as many."""
        for start in range(0, len(node_ids), REMOVE_BATCH):
            options = bm.BatchNodeRemoveOptions(
                node_ids=node_ids[start : start + REMOVE_BATCH],
                node_deallocation_option=bm.BatchNodeDeallocationOption.REQUEUE,
            )
            self._pool_post("remove nodes", "_remove_nodes_internal", "removenodes", options.as_dict(),
                            self.pool_id, options)
        log.info("Removed %d node(s) from Batch pool %s", len(node_ids), self.pool_id)

    def _pool_post(self, what: str, internal: str, verb: str, body: Any, *args: Any) -> None:
        try:
            self._call(what, self._post_alone, internal, f"/pools/{self.pool_id}/{verb}", body, *args)
        except ResourceExistsError as exc:  # 409: resizing / stopping / autoscale since we looked
            raise PoolBusy(f"Batch pool {self.pool_id}: cannot {what} now ({error_text(exc)})") from exc
        except ResourceNotFoundError as exc:
            raise JobNotFound(f"Batch pool {self.pool_id} not found ({error_text(exc)})") from exc
        self._last_state = (0.0, None)  # the pool's allocation changes now

    def broken_nodes(self) -> list[BrokenNode]:
        """Nodes in a broken state (one list request), with the start task's exit code and stderr tail."""

        def fetch() -> list[bm.BatchNode]:
            return list(self.client.list_nodes(self.pool_id, filter=BROKEN_FILTER, select=NODE_FIELDS))

        try:
            nodes = self._call("list broken nodes", fetch)
        except ResourceNotFoundError:
            return []
        except ResourceExistsError as exc:
            raise self._unexpected("list broken nodes", exc) from exc
        out = []
        for node in nodes:
            info = node.start_task_info
            failure = ""
            if info is not None and info.failure_info is not None:
                failure = f"{info.failure_info.code or ''}: {info.failure_info.message or ''}".strip(": ")
            elif node.errors:
                failure = "; ".join(f"{e.code}: {e.message}" for e in node.errors)
            state = _lower(node.state)
            tail = self._start_task_stderr(node.id or "") if state == "starttaskfailed" else ""
            out.append(BrokenNode(node.id or "", state, info.exit_code if info is not None else None, failure, tail))
        return out

    def _start_task_stderr(self, node_id: str) -> str:
        """The last lines of the start task's stderr.txt on the node (empty when it cannot be read)."""
        try:
            chunks = self._call("get start task stderr", self.client.download_node_file, self.pool_id, node_id,
                                "startup/stderr.txt")
            data = b"".join(chunks)
        except (GatewayError, ResourceNotFoundError, ResourceExistsError) as exc:
            log.warning("start task stderr of node %s unreadable: %s", node_id, exc)
            return ""
        return data.decode("utf-8", "replace")[-STDERR_TAIL_CHARS:]
