"""Bad settings stop the local host at start-up with a message naming the setting, not a stack trace."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from devhost.azurite import DEV_KEY, REPO


def _start_host(env_changes: dict[str, str], tmp_path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOCAL_STATE_DIR": str(tmp_path), **env_changes}
    return subprocess.run([sys.executable, "-m", "devhost.host"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"FFMPEG_PRESET": "ultra"}, "FFMPEG_PRESET"),
        ({"INPUT_CONTAINER": "No_Such_Name"}, "INPUT_CONTAINER"),
        ({"MONITOR_SCHEDULE": "every minute"}, "MONITOR_SCHEDULE"),
        ({"BATCH_DEDICATED_FLOOR": "4", "BATCH_MAX_NODES": "3"}, "BATCH_DEDICATED_FLOOR=4 is above BATCH_MAX_NODES=3"),
    ],
)
def test_malformed_settings_are_named(azurite, tmp_path, changes, named):
    result = _start_host({"AzureWebJobsStorage": azurite.connection_string, **changes}, tmp_path)
    assert result.returncode == 2
    assert named in result.stderr and "Traceback" not in result.stderr


def test_a_wrong_account_key_is_named(azurite, tmp_path):
    wrong = azurite.connection_string.replace(DEV_KEY, "d3Jvbmcga2V5" * 7 + "AA==")
    result = _start_host({"AzureWebJobsStorage": wrong}, tmp_path)
    assert result.returncode == 2
    assert "AzureWebJobsStorage" in result.stderr and "credentials" in result.stderr


def test_an_unreachable_storage_endpoint_is_named(tmp_path):
    with socket.socket() as held:  # bound for the whole test and never listening: connections are refused
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        conn = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
                f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
        result = _start_host({"AzureWebJobsStorage": conn}, tmp_path)
    assert result.returncode == 2
    assert "AzureWebJobsStorage" in result.stderr and "cannot reach" in result.stderr
