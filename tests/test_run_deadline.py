"""A timer run's deadline comes from host.json's functionTimeout, in one place, with half of it as margin."""

from __future__ import annotations

import json

import pytest

from shared.run_deadline import HOST_JSON, RUN_SHARE, function_timeout_seconds, run_seconds


@pytest.mark.parametrize(("timeout", "seconds"), [("00:05:00", 300), ("00:10:00", 600), ("1.02:00:30", 93630),
                                                  ("00:30:00.000", 1800), (None, 300)])
def test_the_function_timeout_is_read_from_host_json(tmp_path, timeout, seconds):
    host = tmp_path / "host.json"
    host.write_text(json.dumps({"version": "2.0", **({} if timeout is None else {"functionTimeout": timeout})}))
    assert function_timeout_seconds(host) == seconds


def test_a_timeout_that_is_no_timespan_is_an_error(tmp_path):
    host = tmp_path / "host.json"
    host.write_text(json.dumps({"functionTimeout": "5 minutes"}))
    with pytest.raises(ValueError, match="is not a"):
        function_timeout_seconds(host)


def test_runs_end_at_half_the_deployed_host_jsons_timeout():
    deployed = json.loads(HOST_JSON.read_text())["functionTimeout"]
    assert RUN_SHARE <= 0.5 and run_seconds() == function_timeout_seconds() * RUN_SHARE
    assert (deployed, run_seconds()) == ("00:05:00", 150.0)
