"""Documented defaults run as they are (no test override): the pool, slots and reconcile sizes a user gets."""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from localbatch.gateway import LocalBatchGateway
from shared import bootstrap
from shared.ports.batch import TaskSpec
from shared.settings import Settings
from shared.usecases.job import pool_spec


def test_a_local_run_with_the_defaults_starts_at_once_and_runs_four_short_conversions_per_core(tmp_path):
    """README: the local minimum pool is the core count (a dropped file starts at once), each node has the VM
    size's 8 slots, and LOCAL_TASK_SLOTS caps them at four per core: with nothing set, 4 x cores one-slot (short)
    conversions run at once."""
    settings = Settings.from_env({"LOCAL_STATE_DIR": str(tmp_path)})
    gw = LocalBatchGateway.from_settings(settings)
    cores = os.cpu_count() or 1
    try:
        gw.ensure_pool(pool_spec(settings))
        gw.ensure_job(settings.pool_id)
        command = "ffmpeg -nostdin -hide_banner -re -f lavfi -i sine=duration=2 -f null -"
        for i in range(4 * cores + 2):
            gw.add_task(TaskSpec(id=f"t{i}", display_name=f"t{i}", command_line=command, resource_files=(),
                                 output_files=(), max_task_retry_count=0))
        most = 0
        deadline = time.monotonic() + 60
        while gw.task_counts().succeeded < 4 * cores + 2 and time.monotonic() < deadline:
            most = max(most, gw.task_counts().running)
            time.sleep(0.05)
        assert gw.task_counts().succeeded == 4 * cores + 2
        assert most == 4 * cores
    finally:
        gw.close()


def test_the_reconcile_timer_looks_at_reconcile_batch_blobs_a_run_by_default(azurite, tmp_path, monkeypatch,
                                                                             caplog):
    """RECONCILE_BATCH (500) through the reconcile function itself: a first run over 501 blobs lists 500 and
    continues where it stopped; the next run finishes the pass."""
    from functions.reconcile import reconcile
    from tests.conftest import isolated

    for key, value in {**isolated(), "AzureWebJobsStorage": azurite.connection_string,
                       "LOCAL_STATE_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RECONCILE_BATCH", raising=False)
    monkeypatch.setattr(bootstrap, "_built", None)  # the app's Deps, built from this test's settings
    try:
        deps = bootstrap.deps()
        inputs = deps.storage.service.get_container_client(deps.settings.input_container)
        with ThreadPoolExecutor(16) as pool:  # not MP4s: listed and counted, nothing to submit
            list(pool.map(lambda i: inputs.upload_blob(f"notes/{i:04d}.txt", b"x"), range(501)))
        caplog.set_level(logging.INFO, logger="mp3pipe")
        run = reconcile._function.get_user_function()
        run(None)
        run(None)
    finally:
        deps.gateway.close()  # type: ignore[attr-defined]
        monkeypatch.setattr(bootstrap, "_built", None)
    runs = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith('{"event": "reconcile"')]
    assert [(r["listed"], r["wrapped"]) for r in runs] == [(500, False), (1, True)]
