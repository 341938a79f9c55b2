"""The Batch stand-in's compute nodes: node states and counts, broken nodes, removenodes, start-task files."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

NODE_STATES = ("creating", "idle", "offline", "preempted", "rebooting", "reimaging", "running", "starting",
               "startTaskFailed", "leavingPool", "unknown", "unusable", "waitingForStartTask", "deallocated",
               "deallocating", "upgradingOS")
# BatchNodeState values (lower case on the wire) -> the BatchNodeCounts property that counts them
_COUNT_KEY = {name.lower(): name for name in NODE_STATES}
_STATE_CLAUSE = re.compile(r"^\(?\s*state\s+eq\s+'([A-Za-z]+)'\s*\)?$", re.IGNORECASE)


class NodeFilterError(ValueError):
    """A List Nodes $filter outside what Batch (or this stand-in) accepts."""


def node_state_counts(**states: int) -> dict[str, int]:
    counts = {name: states.get(name, 0) for name in NODE_STATES}
    counts["total"] = sum(counts.values())
    return counts


def parse_node_filter(text: str | None) -> set[str] | None:
    """List Nodes $filter: `state eq '<state>'` clauses joined by `or` (Batch's documented use); None = all."""
    if not text or not text.strip():
        return None
    wanted = set()
    for part in re.split(r"\s+or\s+", text.strip(), flags=re.IGNORECASE):
        m = _STATE_CLAUSE.match(part.strip())
        if m is None:
            raise NodeFilterError(f"unsupported List Nodes $filter clause {part!r}")
        state = m.group(1).lower()
        if state not in _COUNT_KEY:
            raise NodeFilterError(f"{m.group(1)!r} is not a node state")
        wanted.add(state)
    return wanted


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class PoolNodes:
    """The nodes of one pool. Healthy nodes are implied by the pool's current counts (idle, or preempted Spot);
    nodes a test breaks are kept here by id, with their start task's result and files."""

    def __init__(self) -> None:
        self.broken: dict[str, dict[str, Any]] = {}  # node id -> BatchNode body (dedicated)
        self.files: dict[tuple[str, str], bytes] = {}  # (node id, path) -> content

    def break_node(self, node_id: str, state: str, *, exit_code: int | None, stderr: str,
                   failure: tuple[str, str] | None, errors: list[tuple[str, str]] | None, when: dt.datetime) -> None:
        body: dict[str, Any] = {"id": node_id, "state": state, "stateTransitionTime": iso(when), "isDedicated": True,
                                "vmSize": "standard_d2s_v3"}
        if state == "starttaskfailed":
            info: dict[str, Any] = {"state": "completed", "startTime": iso(when - dt.timedelta(minutes=2)),
                                    "endTime": iso(when), "retryCount": 2, "exitCode": exit_code,
                                    "result": "failure"}
            code, message = failure or ("FailureExitCode", "The task process exited with an unexpected exit code")
            info["failureInfo"] = {"category": "usererror", "code": code, "message": message}
            body["startTaskInfo"] = info
            self.files[(node_id, "startup/stderr.txt")] = stderr.encode()
        if errors:
            body["errors"] = [{"code": c, "message": m} for c, m in errors]
        self.broken[node_id] = body

    def counts(self, pool: dict[str, Any], preempted: int) -> dict[str, Any]:
        dedicated = pool.get("currentDedicatedNodes", 0)
        spot = pool.get("currentLowPriorityNodes", 0)
        broken: dict[str, int] = {}
        for node in self.broken.values():
            key = _COUNT_KEY[node["state"]]
            broken[key] = broken.get(key, 0) + 1
        preempted = min(preempted, spot)
        return {
            "poolId": pool["id"],
            "dedicated": node_state_counts(idle=max(dedicated - len(self.broken), 0), **broken),
            "lowPriority": node_state_counts(idle=spot - preempted, preempted=preempted),
        }

    def listing(self, pool: dict[str, Any], wanted: set[str] | None) -> list[dict[str, Any]]:
        nodes = list(self.broken.values())
        healthy = max(pool.get("currentDedicatedNodes", 0) - len(self.broken), 0)
        nodes += [{"id": f"tvmps_idle_{i:03d}", "state": "idle", "isDedicated": True} for i in range(healthy)]
        return [n for n in nodes if wanted is None or n["state"] in wanted]

    def remove(self, pool: dict[str, Any], node_ids: list[str]) -> list[str]:
        """Remove these nodes; returns the ids that are not in the pool (Batch answers 400 for those)."""
        listed = {n["id"] for n in self.listing(pool, None)}
        unknown = [i for i in node_ids if i not in listed]
        if unknown:
            return unknown
        for node_id in node_ids:
            self.broken.pop(node_id, None)
            for key in [k for k in self.files if k[0] == node_id]:
                del self.files[key]
        removed = len(node_ids)
        pool["targetDedicatedNodes"] = max(pool.get("targetDedicatedNodes", 0) - removed, 0)
        pool["currentDedicatedNodes"] = max(pool.get("currentDedicatedNodes", 0) - removed, 0)
        return []
