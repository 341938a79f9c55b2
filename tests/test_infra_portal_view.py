"""The portal view is built from what the code really logs: workbook and alert queries name real events and fields."""

from __future__ import annotations

import ast
import json
import re

from tests.support import kql_reader
from tests.support.bicep_reader import INFRA, REPO, all_resources

WORKBOOK = json.loads((INFRA / "workbook.json").read_text())
ALERT = (INFRA / "alert-query.kql").read_text()
HEARTBEAT = (INFRA / "heartbeat-query.kql").read_text()


def event_calls() -> list[tuple[set[str], ast.Call]]:
    """Every `event(...)` call in shared/ with the event names it can log (names held in variables too)."""
    calls = []
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
                calls.append((names, node))
    return calls


def logged_events() -> dict[str, set[str]]:
    """Event name -> its JSON fields."""
    events: dict[str, set[str]] = {}
    for names, node in event_calls():
        for name in names:
            events.setdefault(name, set()).update(k.arg for k in node.keywords if k.arg)
    return events


def stopping_events() -> set[str]:
    """Events that mean files stop: logged at ERROR (the pipeline cannot go on: a submit, the pool, a node), or
    carrying a failure report (this file is given up on)."""
    out: set[str] = set()
    for names, node in event_calls():
        level = node.args[1] if len(node.args) > 1 else None
        if getattr(level, "attr", None) in ("ERROR", "CRITICAL") or any(k.arg == "report" for k in node.keywords):
            out |= names
    return out


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


def alert_events() -> set[str]:
    """Event names the alert's AppTraces part selects (`event in (...)` / `event == ...`)."""
    query = kql_reader.parse("alert", ALERT)
    return {text.strip('"') for c in query.comparisons() if c.table == "AppTraces" and c.column == "event"
            and c.op in ("in", "==") for _, text in c.literals}


def test_alert_fires_on_every_event_that_stops_files():
    stopping = stopping_events()
    assert {"failed", "rejected", "submit-failed", "pool-resize-error", "node-broken", "pool-not-created"} <= stopping
    missing = stopping - alert_events()
    assert missing == set(), f"events that stop files but the alert does not see: {sorted(missing)}"
    assert alert_events() <= set(logged_events())


def test_alert_fires_on_errors_logged_outside_events_poison_queue_and_dead_letters():
    query = kql_reader.parse("alert", ALERT)
    found = {(c.table, c.column, c.op, c.literals) for c in query.comparisons()}
    assert ("AppTraces", "SeverityLevel", ">=", (("long", "3"),)) in found  # Error and Critical: log.error(...)
    assert "webjobs-blobtrigger-poison" in ALERT and "__DEADLETTER__" in ALERT
    assert {"AppTraces", "StorageQueueLogs", "StorageBlobLogs"} <= query.tables()
    rule = next(r for r in all_resources() if r.type == "Microsoft.Insights/scheduledQueryRules"
                and r.body["name"].startswith("mp3pipe-problems-"))
    criterion = rule.body["properties"]["criteria"]["allOf"][0]
    assert (criterion["operator"], criterion["threshold"], criterion["timeAggregation"]) == ("GreaterThan", 0, "Count")
    logs = [r for r in all_resources() if r.type == "Microsoft.Insights/diagnosticSettings"]
    categories = {c["category"] for r in logs for c in r.body["properties"].get("logs", [])}
    assert {"StorageWrite"} <= categories  # blob writes (drops, MP3s, dead letters) and queue puts (poison)


SAMPLED = {"AppTraces", "AppRequests"}  # Application Insights tables: a row may stand for ItemCount items


def test_traces_the_views_count_are_never_sampled_away():
    sampling = json.loads((REPO / "host.json").read_text())["logging"]["applicationInsights"]["samplingSettings"]
    excluded = {t.strip() for t in sampling.get("excludedTypes", "").split(";")}
    assert sampling.get("isEnabled") is False or {"Trace", "Request", "Exception"} <= excluded, sampling
    unweighted = []
    for name, text in {**queries(), "alert": ALERT}.items():
        tokens = kql_reader.parse(name, text).tokens
        unweighted += [f"{name}: count() over {t.table}" for i, t in enumerate(tokens[:-1])
                       if t.text == "count" and tokens[i + 1].text == "(" and t.table in SAMPLED]
    assert unweighted == [], "count rows of a sampled table: use sum(ItemCount)\n" + "\n".join(unweighted)


def test_a_silent_monitor_fires_the_heartbeat_rule_after_15_minutes():
    """The monitor alone shrinks the pool: no `monitor` event in 15 minutes (app stopped, not started, functions not
    indexed) fires a rule that counts the monitor's own event and fires at zero, emailed like the other."""
    (rule,) = [r for r in all_resources() if r.type == "Microsoft.Insights/scheduledQueryRules"
               and r.body["name"].startswith("mp3pipe-monitor-silent-")]
    props = rule.body["properties"]
    assert (props["windowSize"], props["evaluationFrequency"], props["enabled"]) == ("PT15M", "PT5M", True)
    (criterion,) = props["criteria"]["allOf"]
    assert (criterion["timeAggregation"], criterion["operator"], criterion["threshold"]) == ("Count", "LessThan", 1)
    assert "dimensions" not in criterion  # one series: zero rows still evaluates (to 0) and fires
    view = (INFRA / "modules" / "portal-view.bicep").read_text()
    assert "loadTextContent('../heartbeat-query.kql')" in view and "query: heartbeatQuery" in view
    assert view.count("emailGroup.id") == 2  # both rules mail the alert address
    query = kql_reader.parse("heartbeat", HEARTBEAT)
    assert query.tables() == {"AppTraces"}
    selected = re.findall(r'tostring\(e\.event\)\s*==\s*"([a-z-]+)"', HEARTBEAT)
    assert selected == ["monitor"] and "monitor" in logged_events()
    assert set(re.findall(r"\be\.([a-z_]+)", HEARTBEAT)) - {"event"} <= logged_events()["monitor"]
    titles = [title for title, text in queries().items() if '"monitor"' in text and "mp3pipe-monitor-silent" in title]
    assert titles, "the workbook names the heartbeat alert beside the monitor's runs"
