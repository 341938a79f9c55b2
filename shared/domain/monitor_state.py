"""What the monitor remembers between runs (the state blob), typed, with its JSON form and an equality check."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from shared.domain.scaling import ResizeRetry
from shared.ports.batch import BrokenNode

MONITOR_STATE_BLOB = "monitor/state.json"
HEARTBEAT_SECONDS = 300.0  # an idle run still writes `ran_at` when the last write is this old (`doctor` reads it)


@dataclass
class MonitorState:
    """One monitor run reads it, its steps update it, and it is written back only when it changed (`==`).

    The JSON keys are those the monitor has always written, so a state blob from an older version still loads;
    a key missing from the blob takes its default, an unknown one is dropped.
    """

    # demand and scaling (tick, scaling policy)
    completed: int | None = None  # the job's completed-task count last run (None: no run yet)
    known: int | None = None  # tasks the job held last run (arrivals = growth of this)
    last_work_seen: float | None = None
    arrivals: tuple[float, ...] = ()
    resize_retry: ResizeRetry = field(default_factory=ResizeRetry)
    # outcomes recorded (monitor/outcomes.py): the watermark, and the ids seen at it. The JSON keys are those of
    # the failure watermark it generalizes ("failures_listed", "failed_since"), so either version reads the other's.
    outcomes_listed: bool = False
    outcomes_since: dt.datetime | None = None
    seen_at_since: tuple[str, ...] = ()
    # pool health (logged once each; shown by `mp3pipe status`)
    resize_errors: tuple[str, ...] = ()
    resize_errors_logged: tuple[str, ...] = ()
    broken_now: int = 0
    broken_nodes_logged: tuple[str, ...] = ()
    node_failure: BrokenNode | None = None
    # URL renewal
    renew_checked_at: float = 0.0
    # when a run last wrote the state (epoch seconds): at least every HEARTBEAT_SECONDS while the monitor runs
    ran_at: float | None = None

    def copy(self) -> MonitorState:
        return dataclasses.replace(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> MonitorState:
        d = data or {}
        node = d.get("node_failure")
        since = d.get("failed_since")
        return cls(
            completed=d.get("completed"),
            known=d.get("known"),
            last_work_seen=d.get("last_work_seen"),
            arrivals=tuple(d.get("arrivals", ())),
            resize_retry=ResizeRetry(**d.get("resize_retry", {})),
            outcomes_listed=bool(d.get("failures_listed", False)),
            outcomes_since=dt.datetime.fromisoformat(since) if since else None,
            seen_at_since=tuple(d.get("seen_at_since", ())),
            resize_errors=tuple(d.get("resize_errors", ())),
            resize_errors_logged=tuple(d.get("resize_errors_logged", ())),
            broken_now=int(d.get("broken_now", 0)),
            broken_nodes_logged=tuple(d.get("broken_nodes_logged", ())),
            node_failure=None if not node else BrokenNode(
                node["node"], node["state"], node.get("exit_code"), node.get("failure", ""),
                node.get("stderr_tail", "")),
            renew_checked_at=float(d.get("renew_checked_at", 0.0)),
            ran_at=d.get("ran_at"),
        )

    def to_json(self) -> dict[str, Any]:
        node = self.node_failure
        return {
            "completed": self.completed,
            "known": self.known,
            "last_work_seen": self.last_work_seen,
            "arrivals": list(self.arrivals),
            "resize_retry": dataclasses.asdict(self.resize_retry),
            "failures_listed": self.outcomes_listed,
            "failed_since": self.outcomes_since.isoformat() if self.outcomes_since else None,
            "seen_at_since": list(self.seen_at_since),
            "resize_errors": list(self.resize_errors),
            "resize_errors_logged": list(self.resize_errors_logged),
            "broken_now": self.broken_now,
            "broken_nodes_logged": list(self.broken_nodes_logged),
            "node_failure": None if node is None else {
                "node": node.id, "state": node.state, "exit_code": node.exit_code, "failure": node.failure,
                "stderr_tail": node.stderr_tail},
            "renew_checked_at": self.renew_checked_at,
            **({} if self.ran_at is None else {"ran_at": self.ran_at}),
        }

    def heartbeat_due(self, now: float) -> bool:
        """An idle run writes the state anyway when its `ran_at` is HEARTBEAT_SECONDS old (or was never written)."""
        return self.ran_at is None or now - self.ran_at >= HEARTBEAT_SECONDS
