"""The portal view is built from what the code really logs: workbook and alert queries name real events and fields."""

from __future__ import annotations

import ast
import json
import re

from tests.bicep_reader import INFRA, REPO, all_resources

WORKBOOK = json.loads((INFRA / "workbook.json").read_text())
ALERT = (INFRA / "alert-query.kql").read_text()


def logged_events() -> dict[str, set[str]]:
    """Event name -> its JSON fields, from every `event(...)` call in shared/ (names held in variables too)."""
    events: dict[str, set[str]] = {}
    for path in (REPO / "shared").rglob("*.py"):
        tree = ast.parse(path.read_text())
        strings: dict[str, set[str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                values = {n.value for n in ast.walk(node.value)
                          if isinstance(n, ast.Constant) and isinstance(n.value, str)}
                strings.setdefault(node.targets[0].id, set()).update(values)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "event" and node.args:
                first = node.args[0]
                names = ({first.value} if isinstance(first, ast.Constant)
                         else strings.get(getattr(first, "id", ""), set()))
                for name in names:
                    events.setdefault(name, set()).update(k.arg for k in node.keywords if k.arg)
    return events


def queries() -> dict[str, str]:
    return {i["content"]["title"]: i["content"]["query"] for i in WORKBOOK["items"] if i["type"] == 3}


def test_workbook_has_the_four_views():
    titles = set(queries())
    assert {"Files per state over time", "Failures and their reasons",
            "Drop-to-MP3 latency (seconds): p50, p90, p99",
            "Queued tasks against the pool size the monitor asked for"} <= titles
    metrics = [i["content"] for i in WORKBOOK["items"] if i["type"] == 10]
    assert [m["metric"].split("--")[1] for m in metrics[0]["metrics"]] == [
        "RunningNodeCount", "IdleNodeCount", "StartingNodeCount"]
    assert WORKBOOK["version"] == "Notebook/1.0"
    workbook = next(r for r in all_resources() if r.type == "Microsoft.Insights/workbooks")
    assert workbook.body["properties"]["displayName"] == "mp3pipe"


def test_queries_name_events_and_fields_the_code_logs():
    events = logged_events()
    assert {"submitted", "duplicate", "failed", "rejected", "monitor"} <= set(events)
    text = "\n".join(queries().values()) + ALERT
    comparisons = re.findall(r"(?:\bevent|tostring\(e\.event\))\s*(?:in|==)\s*\(?([^)\n]*)", text)
    used_events = set(re.findall(r'"([a-z-]+)"', " ".join(comparisons)))
    assert {"submitted", "failed", "rejected", "monitor"} <= used_events <= set(events), used_events - set(events)
    fields = set(re.findall(r"\be\.([a-z_]+)", text)) - {"event"}
    logged_fields = set().union(*events.values())
    assert fields and fields <= logged_fields, fields - logged_fields


def test_placeholders_are_filled_by_the_template():
    text = json.dumps(WORKBOOK) + ALERT
    expected = {"__WORKSPACE__", "__BATCH__", "__INPUT__", "__OUTPUT__", "__DEADLETTER__"}
    assert set(re.findall(r"__[A-Z]+__", text)) == expected
    view = (INFRA / "modules" / "portal-view.bicep").read_text()
    for placeholder in expected:
        assert f"'{placeholder}'" in view


def test_alert_fires_on_failed_files_poison_queue_and_dead_letters():
    assert '"failed"' in ALERT and "webjobs-blobtrigger-poison" in ALERT and "__DEADLETTER__" in ALERT
    rule = next(r for r in all_resources() if r.type == "Microsoft.Insights/scheduledQueryRules")
    criterion = rule.body["properties"]["criteria"]["allOf"][0]
    assert (criterion["operator"], criterion["threshold"], criterion["timeAggregation"]) == ("GreaterThan", 0, "Count")
    logs = [r for r in all_resources() if r.type == "Microsoft.Insights/diagnosticSettings"]
    categories = {c["category"] for r in logs for c in r.body["properties"].get("logs", [])}
    assert {"StorageWrite"} <= categories  # blob writes (drops, MP3s, dead letters) and queue puts (poison)


def test_notification_subscribes_to_finished_files_and_failure_reports():
    notify = next(r for r in all_resources() if r.type == "Microsoft.EventGrid/systemTopics/eventSubscriptions")
    f = notify.body["properties"]["filter"]
    assert f["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert f["advancedFilters"] == [{"operatorType": "StringEndsWith", "key": "subject",
                                     "values": [".mp3", ".error.json"]}]
