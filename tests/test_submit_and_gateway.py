"""The submit use-case and the local gateway, in-process against real Azurite."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.storage.blob import BlobClient

from devhost.host import blob_client_arg
from localbatch.gateway import LocalBatchGateway
from localbatch.store import spec_from_json
from shared.ports.batch import PoolSpec, ResourceFile, TaskSpec
from shared.usecases.submit import submit_blob, submit_triggered
from tests.conftest import wait_until
from tests.support.local_tasks import task_ids


def _upload(deps, name, data):
    return deps.storage.service.get_blob_client(deps.settings.input_container, name).upload_blob(data, overwrite=True)


def test_the_same_blob_version_triggered_twice_makes_one_task(deps, media):
    _upload(deps, "twice.mp4", media["tone"].read_bytes())
    client = blob_client_arg("AzureWebJobsStorage", deps.settings.input_container, "twice.mp4")
    first = submit_blob(client, deps)
    second = submit_blob(client, deps)
    assert (first.status, second.status) == ("submitted", "duplicate")
    assert first.task_id == second.task_id
    assert task_ids(deps.gateway) == [first.task_id]
    assert deps.gateway.task_counts().active == 1


def test_a_trigger_is_submitted_through_the_apps_pooled_client_not_the_triggers(deps, media):
    _upload(deps, "pooled.mp4", media["tone"].read_bytes())
    # The trigger's own client points at a port nobody listens on: any request through it would fail.
    dead = deps.storage.service.url.replace(f":{urlsplit(deps.storage.service.url).port}", ":9")
    client = BlobClient(dead, deps.settings.input_container, "pooled.mp4",
                        credential=deps.storage.service.credential, retry_total=0)
    result = submit_triggered(client, deps)
    assert result.status == "submitted"
    assert task_ids(deps.gateway) == [result.task_id]


def _sas(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_the_submitted_task_reads_a_short_lived_url_and_names_no_blob_in_its_command(deps, media):
    name = "a b/$(id) `x`.mp4"
    _upload(deps, name, media["tone"].read_bytes())
    client = blob_client_arg("AzureWebJobsStorage", deps.settings.input_container, name)
    before = dt.datetime.now(dt.UTC)
    submit_blob(client, deps)
    after = dt.datetime.now(dt.UTC)
    spec = spec_from_json(deps.gateway.table.q("SELECT spec FROM tasks")[0][0])
    assert "$(id)" not in spec.command_line and "a b" not in spec.command_line
    ttl = dt.timedelta(seconds=deps.settings.task_max_wall_clock_seconds) + dt.timedelta(hours=12)
    [resource] = spec.resource_files
    out_url = spec.output_files[0].container_url
    assert {o.container_url for o in spec.output_files} == {out_url}
    for url, resource_type, permissions in ((resource.http_url, "b", "r"), (out_url, "c", "cw")):
        sas = _sas(url)
        assert sas["sr"] == resource_type and sas["sp"] == permissions and sas["sig"]
        expiry = dt.datetime.fromisoformat(sas["se"].replace("Z", "+00:00"))
        # long enough for the longest task plus a queueing margin, and no longer (SAS expiry has 1 s resolution)
        assert before + ttl - dt.timedelta(seconds=1) <= expiry <= after + ttl

    # What those limits mean against storage itself: the input URL reads and nothing else ...
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import BlobClient, ContainerClient

    reader = BlobClient.from_blob_url(resource.http_url)
    assert reader.download_blob().readall() == media["tone"].read_bytes()
    for write in (lambda: reader.upload_blob(b"x", overwrite=True), reader.delete_blob):
        with pytest.raises(HttpResponseError) as refused:
            write()
        assert refused.value.status_code == 403
    # ... and the output URL creates and writes blobs, but cannot read, list or delete them.
    writer = ContainerClient.from_container_url(out_url)
    writer.upload_blob("probe/out.mp3", b"mp3", overwrite=True)
    for other in (lambda: writer.download_blob("probe/out.mp3").readall(), lambda: list(writer.list_blobs()),
                  lambda: writer.delete_blob("probe/out.mp3")):
        with pytest.raises(HttpResponseError) as refused:
            other()
        assert refused.value.status_code == 403


def _state(gw: LocalBatchGateway, task_id: str) -> str:
    return (gw.task_state(task_id) or ("",))[0]


def _spec(task_id: str, command: str) -> TaskSpec:
    return TaskSpec(id=task_id, display_name=task_id, command_line=command, resource_files=(), output_files=(),
                    max_task_retry_count=0)


def test_pool_size_gates_the_local_slots(tmp_path):
    gw = LocalBatchGateway(tmp_path, max_slots=4)
    try:
        gw.ensure_pool(PoolSpec(id="mp3pipe-pool", slots_per_node=1, initial_dedicated_nodes=0))
        gw.ensure_job("mp3pipe-pool")
        gw.add_task(_spec("t1", "ffmpeg -nostdin -hide_banner -f lavfi -i sine=duration=0.2 -f null -"))
        time.sleep(1.0)
        assert gw.task_state("t1")[0] == "active"  # zero nodes: nothing runs
        gw.resize(1, 0)
        wait_until(lambda: _state(gw, "t1") == "completed", 30)
        assert gw.task_state("t1") == ("completed", "success", 0)
        assert gw.task_counts().succeeded == 1
    finally:
        gw.close()


def test_local_task_slots_caps_conversions_at_once_whatever_the_pool(tmp_path):
    from shared.settings import Settings

    settings = Settings.from_env({"LOCAL_STATE_DIR": str(tmp_path), "LOCAL_TASK_SLOTS": "3"})
    gw = LocalBatchGateway.from_settings(settings)
    try:
        gw.ensure_pool(PoolSpec(id=settings.pool_id, slots_per_node=2, initial_dedicated_nodes=5))  # 10 slots
        gw.ensure_job(settings.pool_id)
        for i in range(6):
            gw.add_task(_spec(f"t{i}", "ffmpeg -nostdin -hide_banner -re -f lavfi -i sine=duration=1.5 -f null -"))
        most = 0
        deadline = time.monotonic() + 60
        while gw.task_counts().succeeded < 6 and time.monotonic() < deadline:
            most = max(most, gw.task_counts().running)
            time.sleep(0.05)
        assert gw.task_counts().succeeded == 6
        assert most == 3
    finally:
        gw.close()


def test_a_failing_task_is_retried_then_reported_once(tmp_path):
    gw = LocalBatchGateway(tmp_path, max_slots=2)
    try:
        gw.ensure_pool(PoolSpec(id="mp3pipe-pool", slots_per_node=1, initial_dedicated_nodes=1))
        gw.ensure_job("mp3pipe-pool")
        spec = TaskSpec(id="bad", display_name="bad", command_line="ffmpeg -nostdin -i missing.mp4 out.mp3",
                        resource_files=(), output_files=(), max_task_retry_count=2)
        gw.add_task(spec)
        wait_until(lambda: _state(gw, "bad") == "completed", 30)
        failed = gw.finished_tasks_since(None)
        assert [(f.id, f.succeeded, f.attempts) for f in failed] == [("bad", False, 3)]
        assert failed[0].exit_code not in (0, None)
        later = gw.finished_tasks_since(failed[0].state_transition_time)
        assert [f.id for f in later] == ["bad"]  # inclusive watermark; the pipeline dedupes at the boundary
    finally:
        gw.close()


CHILD = """
import sys, time
from localbatch.gateway import LocalBatchGateway
from shared.ports.batch import PoolSpec, TaskSpec
gw = LocalBatchGateway(sys.argv[1], max_slots=1)
gw.ensure_pool(PoolSpec(id="mp3pipe-pool", slots_per_node=1, initial_dedicated_nodes=1))
gw.ensure_job("mp3pipe-pool")
gw.add_task(TaskSpec(id="slow", display_name="slow", resource_files=(), output_files=(),
    command_line="ffmpeg -nostdin -re -f lavfi -i sine=duration=30 -f null -"))
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    """Whether the process runs (an exited one not yet reaped by its new parent counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False


def _task_pid(tmp_path: Path, task_id: str = "slow") -> int:
    """The pid of the task's process, as its gateway wrote it in the task folder."""
    return int((tmp_path / "batch" / "tasks" / "mp3pipe-job" / task_id / "pid").read_text())


def _kill_if_ours(pid: int, task_dir: Path) -> None:
    """Clean-up: kill a task process this test started, if it still runs in that task's folder (pid not reused)."""
    with contextlib.suppress(OSError):
        if _alive(pid) and os.readlink(f"/proc/{pid}/cwd").startswith(str(task_dir)):
            os.killpg(pid, signal.SIGKILL)


@contextlib.contextmanager
def _host_running_slow(tmp_path, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Another process whose local gateway is running task "slow" (30 s of ffmpeg): (that process, the task's
    pid). Both are killed afterwards, by pid."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=os.getcwd(), env=env)
    task_pid = None
    try:
        probe = LocalBatchGateway(tmp_path, run_tasks=False)
        wait_until(lambda: _state(probe, "slow") == "running" and probe.history("slow")[-1:] and
                   probe.history("slow")[-1]["event"] == "exec", 30, interval=0.1, what="task slow launched")
        probe.close()
        wait_until(lambda: (tmp_path / "batch/tasks/mp3pipe-job/slow/pid").exists(), 10, what="its pid written")
        task_pid = _task_pid(tmp_path)
        yield child, task_pid
    finally:
        child.kill()
        child.wait()
        if task_pid is not None:
            _kill_if_ours(task_pid, tmp_path / "batch" / "tasks")


def test_a_task_running_when_its_process_is_killed_runs_again(tmp_path):
    gw = None
    try:
        with _host_running_slow(tmp_path) as (child, task_pid):
            gw = LocalBatchGateway(tmp_path, run_tasks=False)
            assert gw.task_state("slow")[0] == "running"
            gw.close()
            child.send_signal(signal.SIGKILL)
            child.wait()
            wait_until(lambda: not _alive(task_pid), 10, what="ffmpeg gone with its host (parent-death signal)")
            gw = LocalBatchGateway(tmp_path, run_tasks=False)  # a restart: recovery requeues it
            assert gw.task_state("slow")[0] == "active"
            assert gw.task_counts().active == 1
            assert gw.table.q("SELECT requeue_count FROM tasks WHERE id='slow'") == [(1,)]
    finally:
        if gw:
            gw.close()


def test_recovery_kills_a_task_process_that_outlived_its_host(tmp_path):
    """Without setpriv on the PATH (no parent-death signal) a task's ffmpeg outlives a killed host: the restart
    must kill it before the task runs again, or two conversions of one file would run."""
    assert shutil.which("setpriv"), "this test needs util-linux setpriv, which the local gateway uses"
    env = {**os.environ, "PATH": str(tmp_path / "no-such-bin")}
    gw = None
    with _host_running_slow(tmp_path, env=env) as (child, task_pid):
        child.send_signal(signal.SIGKILL)
        child.wait()
        time.sleep(0.5)  # give a parent-death signal, had there been one, time to act
        assert _alive(task_pid), "the task process died with its host: this test needs it to outlive it"
        assert os.readlink(f"/proc/{task_pid}/cwd") == str(tmp_path / "batch/tasks/mp3pipe-job/slow/wd")
        try:
            gw = LocalBatchGateway(tmp_path, run_tasks=False)  # the restart's recovery
            wait_until(lambda: not _alive(task_pid), 10, what="recovery killed the orphaned task process")
            assert gw.task_state("slow")[0] == "active"
        finally:
            if gw:
                gw.close()


def test_an_input_unreachable_for_a_few_seconds_still_converts_in_one_attempt(tmp_path, media, caplog):
    """Storage restarting (refused connections, then a 503) is retried like a node agent does, not failed."""
    import http.server
    import threading

    body = media["tone"].read_bytes()
    hits: list[int] = []

    class Flaky(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            hits.append(1)
            if len(hits) == 1:
                self.send_error(503, "Server Busy")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    # The port is ours from the start (bound, not listening: connections are refused) until the server listens.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky, bind_and_activate=False)
    server.server_bind()
    port = server.server_address[1]

    serving = threading.Event()

    def serve_after_a_refusal() -> None:
        wait_until(lambda: "Connection refused" in caplog.text, 30, what="a refused connection retried")
        server.server_activate()
        serving.set()
        server.serve_forever()

    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    threading.Thread(target=serve_after_a_refusal, daemon=True).start()
    gw = LocalBatchGateway(tmp_path, max_slots=1)
    try:
        gw.ensure_pool(PoolSpec(id="mp3pipe-pool", slots_per_node=1, initial_dedicated_nodes=1))
        gw.ensure_job("mp3pipe-pool")
        gw.add_task(TaskSpec(
            id="flaky", display_name="flaky", command_line="ffmpeg -nostdin -i input.mp4 -f null -",
            resource_files=(ResourceFile(http_url=f"http://127.0.0.1:{port}/in.mp4?sv=2024-01-01&sig=s3cr3t",
                                         file_path="input.mp4"),),
            output_files=(), max_task_retry_count=0,
        ))
        wait_until(lambda: _state(gw, "flaky") == "completed", 60)
        assert gw.task_state("flaky") == ("completed", "success", 0)
        assert len(hits) == 2  # the 503, then the file
        assert "Connection refused" in caplog.text  # the refused phase happened, and was retried
        assert "Retrying" in caplog.text and "s3cr3t" not in caplog.text  # retries are logged, the SAS is not
    finally:
        gw.close()
        if serving.is_set():
            server.shutdown()
        server.server_close()


def test_a_task_left_running_before_a_reboot_runs_again_even_if_its_pid_is_reused(tmp_path):
    """After a reboot the dead owner's pid may belong to an unrelated live process: the task must still rerun."""
    gw = LocalBatchGateway(tmp_path, run_tasks=False)
    gw.ensure_pool(PoolSpec(id="mp3pipe-pool", slots_per_node=1, initial_dedicated_nodes=1))
    gw.ensure_job("mp3pipe-pool")
    gw.add_task(_spec("before-reboot", "ffmpeg -nostdin -hide_banner -f lavfi -i sine=duration=0.2 -f null -"))
    unrelated = subprocess.Popen(["sleep", "60"])  # alive, holding the pid the row names
    try:
        gw.table.q("UPDATE tasks SET state='running', owner_pid=? WHERE id='before-reboot'", unrelated.pid)
        gw.close()
        stale = gw._owner_lock(999999)  # left by a host that ended
        stale.parent.mkdir(parents=True, exist_ok=True)
        stale.touch()
        gw = LocalBatchGateway(tmp_path, max_slots=1)  # the host starting again after the reboot
        assert not stale.exists()
        wait_until(lambda: _state(gw, "before-reboot") == "completed", 30)
        assert gw.task_state("before-reboot") == ("completed", "success", 0)
    finally:
        unrelated.kill()
        unrelated.wait()
        gw.close()


def test_a_task_running_in_a_live_host_is_not_taken_over_by_a_second_process(tmp_path):
    """The CLI (or a second host) starting beside a running host must not requeue the host's running task."""
    with _host_running_slow(tmp_path):
        probe = LocalBatchGateway(tmp_path, run_tasks=False)  # recovery runs again, beside the live owner
        try:
            assert probe.task_state("slow")[0] == "running"
        finally:
            probe.close()


def test_a_first_drop_costs_three_storage_requests_and_a_second_version_reads_its_record(deps, media):
    """What a file costs in storage requests (billed per request in Azure): a name never seen is one listing of the
    names beside it (its own properties, and any rival input mapping to its MP3), one read of its folder's settings
    file per folder level (here the root's: one) and one create of its record (If-None-Match: *), no read of a
    record that is not there; an overwrite, whose
    record exists, reads it and replaces it conditionally (and clears the older version's report)."""
    from azure.storage.blob import BlobServiceClient

    sent: list[tuple[str, str, str]] = []

    def count(request) -> None:
        url = urlsplit(request.http_request.url)
        container = url.path.split("/")[2]
        conditions = "if-none-match" if request.http_request.headers.get("If-None-Match") == "*" else ""
        sent.append((request.http_request.method, container, conditions))

    service = deps.storage.service
    deps.storage.service = BlobServiceClient(service.url, credential=service.credential, raw_request_hook=count)
    s = deps.settings
    _upload(deps, "first.mp4", media["tone"].read_bytes())
    client = deps.storage.blob(s.input_container, "first.mp4")
    sent.clear()
    assert submit_blob(client, deps).status == "submitted"
    assert sent == [("GET", s.input_container, ""), ("GET", s.input_container, ""),
                    ("PUT", s.state_container, "if-none-match")]
    sent.clear()
    _upload(deps, "first.mp4", media["tone_long"].read_bytes())
    sent.clear()
    assert submit_blob(client, deps).status == "submitted"
    assert sent[:4] == [("GET", s.input_container, ""), ("GET", s.input_container, ""),
                        ("PUT", s.state_container, "if-none-match"),
                        ("GET", s.state_container, "")]  # the create fails: a record exists, read it
    assert [(m, c) for m, c, _ in sent[-2:]] == [("PUT", s.state_container), ("DELETE", s.output_container)]
    # Between them at most the blob's properties again: two versions within one second are told apart by ETag.
    assert set(sent[4:-2]) <= {("HEAD", s.input_container, "")}
