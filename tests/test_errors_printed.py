"""Errors where the user looks: `make run` / `make serve` name a bad setting before starting anything, and a
host that stops at start-up has its reason printed, not only "see the log"."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devhost.azurite import REPO, free_port
from devhost.local_pipeline import LocalPipeline
from tests.conftest import isolated


@pytest.mark.parametrize("command", [["devhost.run"], ["devhost.serve", "--port", str(free_port())]])
def test_a_bad_setting_is_printed_and_nothing_starts(tmp_path, command):
    state = tmp_path / "state"
    env = {**os.environ, "FFMPEG_PRESET": "loud", "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-m", *command, "--state", str(state)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    said = result.stdout + result.stderr
    assert "FFMPEG_PRESET='loud' is unknown" in said and "Traceback" not in said
    assert not (state / "azurite").exists() and not (state / "host.log").exists()  # nothing was started


def test_the_reason_a_host_stopped_at_start_up_is_in_the_error(azurite, tmp_path):
    with LocalPipeline(tmp_path / "state", settings=isolated(), azurite=azurite) as pipe:
        pipe.stop_host()
        port = azurite.port
        azurite.stop()  # no storage behind the host: its start-up check fails
        try:
            pipe.start_host()
            assert pipe.host is not None
            pipe.host.wait(timeout=60)
            with pytest.raises(RuntimeError) as caught:
                pipe.check_host()
        finally:
            azurite.port = port
            azurite.start()  # the session's Azurite, for the tests after this one
    message = str(caught.value)
    assert "exited with code 2" in message
    assert "AzureWebJobsStorage: cannot reach the storage endpoint" in message
