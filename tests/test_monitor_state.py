"""The monitor's state blob: one written by the monitor before it had a type still loads, and says the same."""

from __future__ import annotations

import datetime as dt
import json

from shared.domain.monitor_state import MonitorState
from shared.domain.scaling import ResizeRetry
from shared.ports.batch import BrokenNode

# monitor/state.json as the monitor wrote it while the state was a dict (json.dumps, sort_keys, indent 2).
OLD_BLOB = """{
  "arrivals": [1772366400.0, 1772366460.0],
  "broken_nodes_logged": ["tvmps_1"],
  "broken_now": 1,
  "completed": 3,
  "failed_since": "2026-03-01T12:00:05+00:00",
  "failures_listed": true,
  "known": 5,
  "last_work_seen": 1772366460.0,
  "node_failure": {"exit_code": 100, "failure": "start task failed", "node": "tvmps_1",
                   "state": "starttaskfailed", "stderr_tail": "no ffmpeg"},
  "renew_checked_at": 1772366000.0,
  "resize_errors": ["AccountCoreQuotaReached: no cores"],
  "resize_errors_logged": ["AccountCoreQuotaReached: no cores"],
  "resize_retry": {"attempts": 2, "cap": 6, "next_at": 1772366700.0},
  "seen_at_since": ["t1", "t2"]
}"""


def test_a_state_blob_from_the_untyped_monitor_loads_with_every_value() -> None:
    state = MonitorState.from_json(json.loads(OLD_BLOB))
    assert state.arrivals == (1772366400.0, 1772366460.0)
    assert (state.completed, state.known, state.last_work_seen) == (3, 5, 1772366460.0)
    assert state.outcomes_since == dt.datetime(2026, 3, 1, 12, 0, 5, tzinfo=dt.UTC)
    assert state.outcomes_listed and state.seen_at_since == ("t1", "t2")
    assert state.resize_retry == ResizeRetry(attempts=2, next_at=1772366700.0, cap=6)
    assert state.node_failure == BrokenNode("tvmps_1", "starttaskfailed", 100, "start task failed", "no ffmpeg")
    assert (state.broken_now, state.broken_nodes_logged, state.renew_checked_at) == (1, ("tvmps_1",), 1772366000.0)
    assert state.resize_errors == state.resize_errors_logged == ("AccountCoreQuotaReached: no cores",)


def test_the_state_is_written_back_in_the_same_form_it_was_read() -> None:
    old = json.loads(OLD_BLOB)
    assert MonitorState.from_json(old).to_json() == old  # the same keys and values: older readers still read it
    assert MonitorState.from_json(MonitorState.from_json(old).to_json()) == MonitorState.from_json(old)


def test_an_empty_or_missing_blob_is_a_first_run() -> None:
    assert MonitorState.from_json(None) == MonitorState.from_json({}) == MonitorState()
    assert MonitorState().completed is None and MonitorState().outcomes_since is None


def test_a_changed_step_makes_the_state_unequal_so_it_is_written() -> None:
    state = MonitorState.from_json(json.loads(OLD_BLOB))
    as_read = state.copy()
    assert state == as_read  # an idle run: nothing written
    state.resize_errors = ()
    assert state != as_read
