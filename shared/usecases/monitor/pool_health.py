"""What the monitor does about a pool that is not healthy: resize errors seen once, broken nodes removed."""

from __future__ import annotations

import dataclasses
import logging

from shared.domain.monitor_state import MonitorState
from shared.events import event
from shared.ports.batch import BrokenNode, GatewayError, PoolBusy, PoolState
from shared.ports.deps import Deps

MAX_REMEMBERED = 50  # node ids / error signatures kept in the monitor's state to log each once


def note_resize_errors(pool: PoolState, state: MonitorState) -> list[str]:
    """Log each resize error once (Batch's code and message); keep them in the state for `mp3pipe status`."""
    seen = list(state.resize_errors_logged)
    lines = []
    for err in pool.resize_errors:
        line = f"{err.code}: {err.message}"
        lines.append(line)
        if line not in seen:
            event("pool-resize-error", logging.ERROR, code=err.code, message=err.message,
                  current=pool.current_dedicated + pool.current_spot, target=pool.target_dedicated + pool.target_spot)
            seen.append(line)
    state.resize_errors_logged = tuple(seen[-MAX_REMEMBERED:]) if lines else ()
    state.resize_errors = tuple(lines)
    return lines


def remove_broken_nodes(deps: Deps, pool: PoolState, state: MonitorState) -> list[BrokenNode]:
    """Nodes whose start task failed, or that are unusable/unknown, take no tasks but are billed: log why (the
    start task's exit code and stderr tail, once per node), keep the last of them for `mp3pipe status`, and
    remove them from the pool so that the policy's next resize gets working nodes instead."""
    state.broken_now = pool.broken
    if pool.broken <= 0:
        return []
    try:
        nodes = deps.gateway.broken_nodes()
    except GatewayError as exc:
        event("broken-nodes-unread", logging.WARNING, broken=pool.broken, error=str(exc))
        return []
    logged = list(state.broken_nodes_logged)
    for node in nodes:
        if node.id in logged:
            continue
        event("node-broken", logging.ERROR, node=node.id, state=node.state, exit_code=node.exit_code,
              failure=node.failure, stderr_tail=node.stderr_tail)
        logged.append(node.id)
        state.node_failure = dataclasses.replace(node, stderr_tail=node.stderr_tail[-500:])
    state.broken_nodes_logged = tuple(logged[-MAX_REMEMBERED:])
    if nodes and pool.allocation_state == "steady":
        try:
            deps.gateway.remove_nodes([n.id for n in nodes])
        except PoolBusy as exc:
            event("broken-nodes-kept", logging.WARNING, nodes=len(nodes), why=str(exc))
            return []
        event("broken-nodes-removed", logging.WARNING, nodes=[n.id for n in nodes])
        return nodes
    return []
