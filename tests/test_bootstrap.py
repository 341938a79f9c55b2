"""The composition root: a build that failed (storage unreachable at start-up) is not kept; the next call builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from devhost.azurite import Azurite, connection_string, free_port
from shared import bootstrap
from shared.settings import SettingsError
from tests.conftest import isolated


def test_a_failed_build_is_retried_by_the_next_call(azurite: Azurite, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "_built", None)  # this test process has not built the app's Deps yet
    for key, value in {**isolated(), "LOCAL_STATE_DIR": str(tmp_path), "BATCH_GATEWAY": "local"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AzureWebJobsStorage", connection_string(free_port()))  # nothing listens there
    with pytest.raises(SettingsError, match="cannot reach the storage endpoint"):
        bootstrap.deps()

    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)  # storage is back
    built = bootstrap.deps()
    try:
        assert bootstrap.deps() is built
        assert f"127.0.0.1:{azurite.port}/" in built.storage.service.url
    finally:
        built.gateway.close()  # type: ignore[attr-defined]
        monkeypatch.setattr(bootstrap, "_built", None)
