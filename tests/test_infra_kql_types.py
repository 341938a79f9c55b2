"""Every workbook and alert query compares table columns with literals of their documented type (StatusCode is a
string in StorageBlobLogs: `StatusCode == 404` matches nothing)."""

from __future__ import annotations

import pytest

from tests.support import kql_reader
from tests.test_infra_portal_view import ALERT, HEARTBEAT, queries


def all_queries() -> dict[str, str]:
    return {**queries(), "alert-query.kql": ALERT, "heartbeat-query.kql": HEARTBEAT}


def test_every_query_compares_columns_with_their_documented_types():
    errors, compared = [], 0
    for name, text in all_queries().items():
        query = kql_reader.parse(name, text)
        errors += kql_reader.type_errors(query)
        compared += sum(1 for c in query.comparisons() if c.column[0].isupper())
    assert errors == [], "\n".join(errors)
    assert compared >= 10


def test_every_table_the_queries_read_is_documented_with_a_source():
    tables = kql_reader.load_tables()
    read = set().union(*(kql_reader.parse(n, t).tables() for n, t in all_queries().items()))
    assert {"AppTraces", "StorageBlobLogs", "StorageQueueLogs"} <= read
    for name in read:
        assert tables[name]["doc"].startswith("https://learn.microsoft.com/azure/azure-monitor/reference/tables/")
    used = set().union(*(kql_reader.parse(n, t).columns() for n, t in all_queries().items()))
    assert ("StorageBlobLogs", "StatusCode") in used and tables["StorageBlobLogs"]["columns"]["StatusCode"] == "string"


@pytest.mark.parametrize(("snippet", "expected"), [
    ('StorageBlobLogs | where StatusCode == 404', "StatusCode is string, compared (==) with the long 404"),
    ('StorageBlobLogs | where OperationName == "PutBlob" and StatusCode in (200, "201")',
     "StatusCode is string, compared (in) with the long 200"),
    ('AppTraces | where SeverityLevel >= "3"', "SeverityLevel is int, compared (>=) with the string"),
    ('AppTraces | where SeverityLevel startswith "3"', "`startswith` is a string operator"),
    ('union (AppTraces | take 1), (StorageQueueLogs | where StatusCode != 201)',
     "StorageQueueLogs.StatusCode is string"),
    ('let w = StorageBlobLogs | where Uri has "x";\nw | where StatusCode == 200', "StorageBlobLogs.StatusCode"),
    ('StorageBlobLogs | where Category == "StorageWrite"', "StorageBlobLogs.Category is not in log_tables.json"),
    ('AzureDiagnostics | where ResultType == "Failed"', "reads AzureDiagnostics, a table not in log_tables.json"),
])
def test_a_wrong_type_or_an_undocumented_column_is_caught(snippet, expected):
    errors = kql_reader.type_errors(kql_reader.parse("snippet", snippet))
    assert any(expected in e for e in errors), errors


def test_right_types_and_the_queries_own_columns_pass():
    snippet = ('StorageBlobLogs | where StatusCode in ("200", "201") | extend path = tostring(parse_url(Uri).Path)\n'
               '| where path startswith "/x/" and TimeGenerated > ago(1h)\n'
               '| union (AppTraces | where SeverityLevel >= 3 | summarize n = sum(ItemCount))')
    assert kql_reader.type_errors(kql_reader.parse("snippet", snippet)) == []
