"""A proxy set in the user's environment never carries the local pipeline's traffic to Azurite."""

from __future__ import annotations

import datetime as dt

from localbatch.transfers import upload
from shared.adapters.storage import BlobStorage
from shared.settings import Settings

DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: a request sent through it fails


def _behind_a_dead_proxy(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(var, DEAD_PROXY)
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)


def test_the_apps_storage_client_reaches_azurite_with_a_proxy_in_the_environment(azurite, monkeypatch, tmp_path):
    _behind_a_dead_proxy(monkeypatch)
    storage = BlobStorage.from_settings(Settings.from_env({"AzureWebJobsStorage": azurite.connection_string,
                                                           "LOCAL_STATE_DIR": str(tmp_path)}))
    storage.ensure_containers("behind-a-proxy")
    storage.upload_bytes("behind-a-proxy", "x.mp4", b"an mp4")
    assert [b.name for b in storage.list_blobs("behind-a-proxy")] == ["x.mp4"]


def test_a_local_tasks_output_upload_reaches_azurite_with_a_proxy_in_the_environment(azurite, monkeypatch,
                                                                                        tmp_path):
    storage = BlobStorage.from_settings(Settings.from_env({"AzureWebJobsStorage": azurite.connection_string,
                                                           "LOCAL_STATE_DIR": str(tmp_path)}))
    storage.ensure_containers("proxy-out")
    url = storage.node_write_container_url("proxy-out", dt.timedelta(hours=1))
    _behind_a_dead_proxy(monkeypatch)
    mp3 = tmp_path / "output.mp3"
    mp3.write_bytes(b"an mp3")
    assert upload(url, "a/b.mp3", mp3)
    assert storage.service.get_blob_client("proxy-out", "a/b.mp3").download_blob().readall() == b"an mp3"
