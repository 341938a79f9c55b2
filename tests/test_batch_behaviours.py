"""Azure Batch as it really behaves, through the real SDK against the REST stand-in and real Azurite: failed
submits, task clean-up, resize errors, a shrink blocking growth, broken nodes, a pool being deleted."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shlex
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from devhost.azurite import Azurite
from shared.adapters.batch import azure_pool
from shared.domain import naming, scaling
from shared.domain.monitor_state import MonitorState
from shared.ports.batch import CompletedTask, GatewayError, PoolBusy, PoolSpec
from shared.settings import Settings, SettingsError
from shared.usecases import status
from shared.usecases.file_records import FileRecords
from shared.usecases.monitor import cleanup, outcomes
from shared.usecases.reconcile import reconcile
from shared.usecases.submit import submit_blob
from tests.support.batch_standin import BatchStandin, iso
from tests.test_monitor_requests import START, World, fail, make_world, submit

pytest_plugins = ["tests.support.batch_fixtures"]


@pytest.fixture
def world(azurite: Azurite, batch_standin: BatchStandin) -> Iterator[World]:
    w = make_world(azurite, batch_standin, BATCH_MAX_NODES="10")
    w.tick()  # creates pool and job
    yield w
    w.deps.gateway.close()  # type: ignore[attr-defined]


def upload(w: World, name: str, data: bytes = b"an mp4") -> str:
    blob = w.deps.storage.service.get_blob_client(w.settings.input_container, name)
    return naming.clean_etag(blob.upload_blob(data, overwrite=True)["etag"])


def events(caplog: pytest.LogCaptureFixture, kind: str) -> list[dict[str, object]]:
    out = []
    for record in caplog.records:
        try:
            body = json.loads(record.getMessage())
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("event") == kind:
            out.append(body)
    return out


# -- item 2: a submit that fails never leaves a file stuck ----------------------------------------------------


def test_a_submit_that_keeps_failing_is_not_queued_and_reconcile_submits_it_later(world: World) -> None:
    job = world.settings.job_id
    upload(world, "stuck/a.mp4")
    blob = world.deps.storage.service.get_blob_client(world.settings.input_container, "stuck/a.mp4")
    world.standin.fail_next(403, path=f"/jobs/{job}/tasks", method="POST", times=1, code="AuthorizationFailure")
    with pytest.raises(GatewayError, match="403 AuthorizationFailure"):
        submit_blob(blob, world.deps)  # roles still propagating on a first deployment
    assert world.standin.tasks[job] == {}
    record, _ = FileRecords.of(world.deps).get("stuck/a.mp4")
    assert record is not None and record.state == "unsubmitted" and "403" in record.reason

    (shown,) = status.collect(world.deps).files
    assert shown.state == "waiting" and "reconcile submits it again" in shown.reason

    result = reconcile(world.deps, budget=10)  # Batch accepts tasks again
    assert result.submitted == 1 and len(world.standin.tasks[job]) == 1
    (shown,) = status.collect(world.deps).files
    assert shown.state == "queued"
    assert reconcile(world.deps, budget=10).submitted == 0  # the task exists now: nothing more


def test_a_record_whose_task_batch_lacks_shows_waiting_and_is_resubmitted(world: World) -> None:
    job = world.settings.job_id
    task_id, _ = submit(world, "lost/b.mp4")
    del world.standin.tasks[job][task_id]  # the process died between the record and the add, or the task went
    (shown,) = status.collect(world.deps).files
    assert shown.state == "waiting" and "Batch has no task" in shown.reason
    assert reconcile(world.deps, budget=10).submitted == 1
    assert task_id in world.standin.tasks[job]


def test_a_converted_file_whose_task_was_deleted_is_not_resubmitted(world: World) -> None:
    job = world.settings.job_id
    task_id, _ = submit(world, "done/c.mp4")
    world.deps.storage.service.get_blob_client(world.settings.output_container, "done/c.mp3").upload_blob(b"mp3")
    world.standin.set_task(job, task_id, exit_code=0, at=START - dt.timedelta(hours=1))
    world.clock.advance(60)
    world.tick()
    assert task_id not in world.standin.tasks[job]  # deleted once its outcome (the MP3) was recorded
    assert reconcile(world.deps, budget=10).submitted == 0
    (shown,) = status.collect(world.deps).files
    assert shown.state == "done"


# -- item 8: the persistent job stays small ---------------------------------------------------------------------


def test_tasks_are_deleted_after_retention_once_their_outcome_is_recorded(world: World) -> None:
    job = world.settings.job_id
    ok_old, _ = submit(world, "x/old-ok.mp4")
    ok_new, _ = submit(world, "x/new-ok.mp4")
    failed, _ = submit(world, "x/failed.mp4")
    retention = world.settings.task_retention_seconds
    world.standin.set_task(job, ok_old, exit_code=0, at=START - dt.timedelta(seconds=retention + 60))
    world.standin.set_task(job, ok_new, exit_code=0, at=START - dt.timedelta(seconds=10))  # files kept a while
    fail(world, failed, START - dt.timedelta(seconds=retention + 30))
    world.clock.advance(60)
    result, requests = world.tick()
    assert result.reported == ("x/failed.error.json",)  # reported first, then deleted
    assert set(world.standin.tasks[job]) == {ok_new}
    assert [m for m, _, _ in requests].count("DELETE") == 2
    listing = [r for r in world.standin.sent("GET", f"/jobs/{job}/tasks")
               if "stateTransitionTime lt" in r.query.get("$filter", "")]
    assert listing and listing[-1].query["maxresults"] == str(cleanup.DELETE_BATCH)
    world.clock.advance(retention)
    world.tick()
    assert world.standin.tasks[job] == {}


def test_an_unreported_failure_is_never_deleted() -> None:
    watermark = MonitorState.from_json  # the failure watermark as an older monitor stored it
    old = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    task = CompletedTask("t", False, old)
    assert not outcomes.outcome_recorded(task, watermark({}))  # no failure listed yet
    assert not outcomes.outcome_recorded(task, watermark({"failed_since": old.isoformat(), "seen_at_since": []}))
    assert outcomes.outcome_recorded(task, watermark({"failed_since": old.isoformat(), "seen_at_since": ["t"]}))
    assert outcomes.outcome_recorded(task, watermark({"failed_since": (old + dt.timedelta(seconds=1)).isoformat()}))


# -- item 4: resize errors are seen and acted on ---------------------------------------------------------------


def test_a_quota_error_is_logged_once_shown_and_the_pool_asks_for_what_the_quota_allows(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    pool, job = world.settings.pool_id, world.settings.job_id
    world.standin.bulk_load(job, 20, prefix="queued", state="active")
    world.clock.advance(60)
    grow, _ = world.tick()
    assert grow.resized and grow.target_nodes == 10
    message = "The specified account has reached VM core quota. Required 20 cores, available 6."
    world.standin.set_resize_error(pool, "AccountCoreQuotaReached", message, reached=3)
    with caplog.at_level(logging.INFO, logger="mp3pipe"):
        world.clock.advance(60)
        capped, _ = world.tick()
        assert capped.resized and world.resizes[-1]["targetDedicatedNodes"] == 3  # what the quota allowed
        world.standin.finish_resize(pool)
        world.standin.set_pool(pool, resizeErrors=[{"code": "AccountCoreQuotaReached", "message": message}])
        world.clock.advance(60)
        held, _ = world.tick()
        assert not held.resized  # within the backoff: no new attempt
    (logged,) = events(caplog, "pool-resize-error")
    assert (logged["code"], logged["message"]) == ("AccountCoreQuotaReached", message)
    report = status.collect(world.deps)
    assert any("AccountCoreQuotaReached" in p and "available 6" in p for p in report.pool_problems)

    world.standin.set_pool(pool, resizeErrors=[])
    world.clock.advance(scaling.RETRY_FIRST_SECONDS)
    again, _ = world.tick()
    assert again.resized and world.resizes[-1]["targetDedicatedNodes"] == 10  # the full demand again


def test_an_allocation_failure_is_retried_with_backoff_even_though_the_target_is_right(world: World) -> None:
    pool, job = world.settings.pool_id, world.settings.job_id
    world.standin.bulk_load(job, 4, prefix="queued", state="active")
    world.clock.advance(60)
    assert world.tick()[0].resized
    world.standin.set_resize_error(pool, "AllocationFailed", "Allocation failed: no capacity.", reached=0)
    world.clock.advance(60)
    first, _ = world.tick()
    assert first.resized and world.resizes[-1]["targetDedicatedNodes"] == 2  # the same target, sent again
    world.standin.set_resize_error(pool, "AllocationFailed", "Allocation failed: no capacity.", reached=0)
    world.clock.advance(60)
    assert not world.tick()[0].resized  # backoff: 120 s, then 240 s
    world.clock.advance(scaling.RETRY_FIRST_SECONDS)
    assert world.tick()[0].resized
    plan = scaling.plan_after_resize_errors(("AllocationFailed",), 0, 2, 0.0, scaling.ResizeRetry(5, 0.0))
    assert plan.retry.next_at == scaling.RETRY_MAX_SECONDS  # capped at 30 min


# -- item 5: a shrink never blocks growth ---------------------------------------------------------------------


def test_demand_during_a_shrink_stops_the_resize_then_grows(world: World) -> None:
    pool, job = world.settings.pool_id, world.settings.job_id
    world.standin.set_pool(pool, targetDedicatedNodes=0, currentDedicatedNodes=3, allocationState="resizing")
    world.standin.bulk_load(job, 6, prefix="new", state="active")  # files arrive while busy nodes drain
    world.clock.advance(60)
    stopped, requests = world.tick()
    assert ("POST", f"/pools/{pool}/stopresize", 202) in requests and not stopped.resized
    world.standin.settle(pool)
    world.clock.advance(60)
    grown, _ = world.tick()
    assert grown.resized and world.resizes[-1]["targetDedicatedNodes"] == 3


# -- item 6: broken nodes are not capacity ----------------------------------------------------------------------


def test_a_node_whose_start_task_failed_is_logged_shown_and_removed(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    pool, job = world.settings.pool_id, world.settings.job_id
    world.standin.bulk_load(job, 4, prefix="queued", state="active")
    world.clock.advance(60)
    world.tick()
    world.standin.finish_resize(pool)  # 2 nodes; one of them cannot install ffmpeg
    stderr = "E: Failed to fetch http://azure.archive.ubuntu.com/ubuntu/pool/main/f/ffmpeg 503\n" \
             "E: Unable to fetch some archives\n"
    world.standin.break_node(pool, "tvmps_broken_001", exit_code=100, stderr=stderr)
    with caplog.at_level(logging.INFO, logger="mp3pipe"):
        world.clock.advance(60)
        result, requests = world.tick()
    assert ("POST", f"/pools/{pool}/removenodes", 202) in requests
    (removal,) = world.standin.sent("POST", f"/pools/{pool}/removenodes")
    assert removal.body["nodeList"] == ["tvmps_broken_001"]
    (logged,) = events(caplog, "node-broken")
    assert logged["exit_code"] == 100 and "Unable to fetch some archives" in str(logged["stderr_tail"])
    assert "broken node" in result.reason
    world.standin.break_node(pool, "tvmps_broken_002", exit_code=100, stderr=stderr)  # still failing
    world.standin.settle(pool)
    report = status.collect(world.deps)
    world.clock.advance(60)
    world.tick()
    assert any("starttaskfailed" in p and "exit code 100" in p for p in status.collect(world.deps).pool_problems)
    assert report.pool is not None and report.pool.broken == 1


# -- item 10: smaller things ------------------------------------------------------------------------------------


def test_a_pool_being_deleted_is_waited_for_then_created(batch_standin: BatchStandin) -> None:
    batch_standin.add_pool("mp3pipe-pool")
    batch_standin.start_deleting_pool("mp3pipe-pool")
    g = batch_standin.gateway(pool_id="mp3pipe-pool", job_id="mp3pipe-job", slots_per_node=2,
                              pool_delete_wait_seconds=10)
    try:
        state = g.pool_state()
        assert state is not None and state.deleting
        timer = threading.Timer(0.5, batch_standin.finish_deleting_pool, ["mp3pipe-pool"])
        timer.start()
        assert g.ensure_pool(PoolSpec(id="mp3pipe-pool", slots_per_node=2)) is True
        timer.join()
        statuses = [r.status for r in batch_standin.sent("POST", "/pools")]
        assert statuses[0] == 409 and statuses[-1] == 201
        batch_standin.start_deleting_pool("mp3pipe-pool")
        quick = batch_standin.gateway(pool_id="mp3pipe-pool", job_id="mp3pipe-job", slots_per_node=2,
                                      pool_delete_wait_seconds=0)
        with pytest.raises(GatewayError, match="still being deleted"):
            quick.ensure_pool(PoolSpec(id="mp3pipe-pool", slots_per_node=2))
        quick.close()
    finally:
        g.close()


def test_the_fallback_resize_path_sends_one_request_and_leaves_no_thread(batch_standin: BatchStandin) -> None:
    g = batch_standin.gateway(pool_id="mp3pipe-pool", job_id="mp3pipe-job", slots_per_node=1)
    try:
        g.ensure_pool(PoolSpec(id="mp3pipe-pool", slots_per_node=1))
        g.pool_state()

        class NoInternals:
            """The client without the SDK's private one-request methods (a future azure-batch)."""

            def __init__(self, client: object) -> None:
                self._client = client

            def __getattr__(self, name: str) -> object:
                if name.endswith("_internal"):
                    raise AttributeError(name)
                return getattr(self._client, name)

        g.client = NoInternals(g.client)  # type: ignore[assignment]
        before = threading.active_count()
        batch_standin.clear_requests()
        g.resize(2, 0)
        assert [(r.method, r.path, r.status) for r in batch_standin.requests] == [
            ("POST", "/pools/mp3pipe-pool/resize", 202)]
        assert batch_standin.requests[0].body == {"targetDedicatedNodes": 2, "targetLowPriorityNodes": 0,
                                                  "nodeDeallocationOption": "taskcompletion"}
        assert threading.active_count() == before
        batch_standin.set_pool("mp3pipe-pool", allocationState="steady")
        g.pool_state()
        batch_standin.set_pool("mp3pipe-pool", allocationState="resizing")  # changed since the monitor looked
        with pytest.raises(PoolBusy):  # the fallback's 409 means what the SDK's 409 means
            g.resize(1, 0)
    finally:
        g.close()


# -- item 6: the start task retries its apt steps ----------------------------------------------------------------


def _fake_bin(tmp_path: Path, failures: int) -> Path:
    """apt-get failing `failures` times (the lists lock, a mirror 503), then working; sleep and ffmpeg instant."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "apt-calls"
    scripts = {
        "apt-get": f'echo "$@" >> {calls}; n=$(wc -l < {calls}); '
                   f'if [ "$n" -le {failures} ]; then echo "E: Could not get lock /var/lib/apt/lists/lock" >&2; '
                   "exit 100; fi; exit 0",
        "sleep": f'echo "$1" >> {tmp_path}/sleeps',
        "ffmpeg": "echo ffmpeg version 6.1",
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize(("failures", "ok"), [(2, True), (azure_pool.APT_ATTEMPTS, False)])
def test_the_start_task_retries_apt_with_backoff(tmp_path: Path, failures: int, ok: bool) -> None:
    bin_dir = _fake_bin(tmp_path, failures)
    argv = shlex.split(azure_pool.START_TASK_COMMAND)  # Batch runs the command line without a shell
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    calls = (tmp_path / "apt-calls").read_text().splitlines()
    if ok:
        assert done.returncode == 0, done.stderr
        assert [c.split()[-2:] for c in calls][2:] == [["update", "-y"], ["ffmpeg", "python3"]]  # update x3, install
        assert (tmp_path / "sleeps").read_text().split() == ["15", "30"]
    else:
        assert done.returncode != 0 and len(calls) == azure_pool.APT_ATTEMPTS  # gives up: the node is broken


# -- items 7 and 10: settings checked at start-up -----------------------------------------------------------------


def test_slots_default_to_four_per_vcpu_and_too_many_are_refused() -> None:
    assert Settings.from_env({}).slots_per_node == 8  # standard_d2s_v3: 4 x 2 vCPUs, Batch's most
    assert Settings.from_env({"BATCH_VM_SIZE": "standard_f8s_v2"}).slots_per_node == 32
    assert Settings.from_env({"BATCH_VM_SIZE": "standard_hb120rs_v3"}).slots_per_node == 256  # Batch's cap
    assert Settings.from_env({"BATCH_SLOTS_PER_NODE": "8"}).slots_per_node == 8  # 4 x 2 vCPUs is allowed
    with pytest.raises(SettingsError, match=r"BATCH_SLOTS_PER_NODE=9 .* at most 4 x vCPUs = 8"):
        Settings.from_env({"BATCH_SLOTS_PER_NODE": "9"})


def test_a_wall_clock_past_the_delegation_keys_7_day_cap_is_refused_in_sas_mode() -> None:
    with pytest.raises(SettingsError, match="TASK_MAX_WALL_CLOCK_SECONDS=600000 is too long for SAS node URLs"):
        Settings.from_env({"TASK_MAX_WALL_CLOCK_SECONDS": "600000"})
    Settings.from_env({"TASK_MAX_WALL_CLOCK_SECONDS": "600000", "BATCH_POOL_IDENTITY_ID": "/subscriptions/x/id"})


# -- item 3: node URLs outlive the queue ---------------------------------------------------------------------


def test_a_queued_task_gets_fresh_urls_before_its_sas_expires(world: World, caplog: pytest.LogCaptureFixture) -> None:
    job = world.settings.job_id
    task_id, _ = submit(world, "backlog/late.mp4")
    task = world.standin.tasks[job][task_id]
    first_url = task["resourceFiles"][0]["httpUrl"]
    expiry = dt.datetime.fromisoformat(parse_qs(urlsplit(first_url).query)["se"][0].replace("Z", "+00:00"))
    wall = dt.timedelta(seconds=world.settings.task_max_wall_clock_seconds)
    assert expiry - dt.datetime.now(dt.UTC) > wall + dt.timedelta(hours=11)

    # Without renewal: a node that picks it up after that time cannot download the input, and Batch gives up.
    probe = dict(task, resourceFiles=list(task["resourceFiles"]), executionInfo=dict(task["executionInfo"]))
    world.standin.tasks[job]["probe"] = probe
    assert world.standin.start_task(job, "probe", expiry + dt.timedelta(minutes=1)) == "completed"
    assert probe["executionInfo"]["failureInfo"]["code"] == "BlobAccessDenied"
    del world.standin.tasks[job]["probe"]

    # The task has waited 11.5 h in a backlog: the monitor resubmits it (same id, fresh URLs).
    now = dt.datetime.now(dt.UTC)
    task["creationTime"] = iso(now - dt.timedelta(hours=11, minutes=30))
    world.clock.now = now.timestamp()
    with caplog.at_level(logging.INFO, logger="mp3pipe"):
        _, requests = world.tick()
    assert ("DELETE", f"/jobs/{job}/tasks/{task_id}", 200) in requests
    assert ("POST", f"/jobs/{job}/tasks", 201) in requests
    renewed = world.standin.tasks[job][task_id]
    assert renewed["state"] == "active" and renewed["eTag"] != task["eTag"]  # a new task of the same id
    (logged,) = events(caplog, "urls-renewed")
    assert logged["status"] == "submitted" and "sig=" not in json.dumps(logged)
    new_url = renewed["resourceFiles"][0]["httpUrl"]
    new_expiry = dt.datetime.fromisoformat(parse_qs(urlsplit(new_url).query)["se"][0].replace("Z", "+00:00"))
    # Signed at renewal for the full wall clock + 12 h (SAS times have whole seconds). Here renewal comes only
    # seconds after the first submit: the 11.5 h are the task's faked age.
    assert new_expiry >= now.replace(microsecond=0) + wall + dt.timedelta(hours=12) and new_expiry >= expiry
    assert world.standin.start_task(job, task_id, new_expiry - dt.timedelta(minutes=1)) == "running"
    world.clock.advance(60)
    assert not [r for r in world.tick()[1] if r[0] == "DELETE"]  # looked at again only every 10 minutes


def test_with_a_pool_identity_nothing_is_renewed(azurite: Azurite, batch_standin: BatchStandin) -> None:
    w = make_world(azurite, batch_standin, BATCH_POOL_IDENTITY_ID="/subscriptions/0/identities/pool")
    try:
        w.tick()
        task_id, _ = submit(w, "identity/a.mp4")
        batch_standin.tasks[w.settings.job_id][task_id]["creationTime"] = iso(START - dt.timedelta(hours=20))
        w.clock.advance(3600)
        _, requests = w.tick()
        assert not [r for r in requests if r[0] == "DELETE"] and task_id in batch_standin.tasks[w.settings.job_id]
    finally:
        w.deps.gateway.close()  # type: ignore[attr-defined]


def test_status_with_many_unfinished_files_lists_open_tasks_once_and_never_guesses_queued(world: World) -> None:
    job = world.settings.job_id
    ids = [submit(world, f"many/{i}.mp4")[0] for i in range(5)]
    del world.standin.tasks[job][ids[0]]  # one of them Batch does not have
    world.standin.set_task(job, ids[1], state="running")
    world.standin.clear_requests()
    report = status.collect(world.deps, max_task_lookups=2)
    by_name = {f.name: f for f in report.files}
    assert by_name["many/0.mp4"].state == "waiting" and "Batch has no task" in by_name["many/0.mp4"].reason
    assert by_name["many/1.mp4"].state == "converting"
    assert [by_name[f"many/{i}.mp4"].state for i in (2, 3, 4)] == ["queued"] * 3
    listings = world.standin.sent("GET", f"/jobs/{job}/tasks")
    assert len(listings) == 1 and listings[0].query["$filter"] == "state ne 'completed'"
    lookups = [r for r in world.standin.requests if r.path.startswith(f"/jobs/{job}/tasks/")]
    assert [r.path.rsplit("/", 1)[-1] for r in lookups] == [ids[0]]  # only the one missing from the listing
