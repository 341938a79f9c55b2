"""The submit use-case and the local gateway, in-process against real Azurite."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from devhost.azurite import free_port
from devhost.host import blob_client_arg
from shared import pipeline
from shared.batch.gateway import PoolSpec, ResourceFile, TaskSpec
from shared.batch.local import LocalBatchGateway
from tests.conftest import wait_until


def _upload(deps, name, data):
    return deps.storage.service.get_blob_client(deps.settings.input_container, name).upload_blob(data, overwrite=True)


def test_the_same_blob_version_triggered_twice_makes_one_task(deps, media):
    _upload(deps, "twice.mp4", media["tone"].read_bytes())
    client = blob_client_arg("AzureWebJobsStorage", deps.settings.input_container, "twice.mp4")
    first = pipeline.submit_blob(client, deps)
    second = pipeline.submit_blob(client, deps)
    assert (first.status, second.status) == ("submitted", "duplicate")
    assert first.task_id == second.task_id
    assert deps.gateway.task_ids() == [first.task_id]
    assert deps.gateway.task_counts().active == 1


def test_a_new_version_is_a_new_task(deps, media):
    _upload(deps, "v.mp4", media["tone"].read_bytes())
    client = blob_client_arg("AzureWebJobsStorage", deps.settings.input_container, "v.mp4")
    a = pipeline.submit_blob(client, deps)
    _upload(deps, "v.mp4", media["tone_long"].read_bytes())
    b = pipeline.submit_blob(client, deps)
    assert a.task_id != b.task_id and len(deps.gateway.task_ids()) == 2


def test_non_mp4_is_skipped_without_a_task(deps):
    _upload(deps, "readme.txt", b"x")
    client = blob_client_arg("AzureWebJobsStorage", deps.settings.input_container, "readme.txt")
    assert pipeline.submit_blob(client, deps).status == "skipped"
    with pytest.raises(Exception):  # noqa: B017 - no job was even needed
        deps.gateway.task_counts()


def test_the_submitted_task_reads_a_short_lived_url_and_names_no_blob_in_its_command(deps, media):
    name = "a b/$(id) `x`.mp4"
    _upload(deps, name, media["tone"].read_bytes())
    client = blob_client_arg("AzureWebJobsStorage", deps.settings.input_container, name)
    pipeline.submit_blob(client, deps)
    row = deps.gateway._q("SELECT spec FROM tasks")[0][0]
    assert "$(id)" not in row.split('"command_line"')[1].split(",")[0]
    assert "sig=" in row and "se=" in row  # SAS with signature and expiry


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


def test_a_failing_task_is_retried_then_reported_once(tmp_path):
    gw = LocalBatchGateway(tmp_path, max_slots=2)
    try:
        gw.ensure_pool(PoolSpec(id="mp3pipe-pool", slots_per_node=1, initial_dedicated_nodes=1))
        gw.ensure_job("mp3pipe-pool")
        spec = TaskSpec(id="bad", display_name="bad", command_line="ffmpeg -nostdin -i missing.mp4 out.mp3",
                        resource_files=(), output_files=(), max_task_retry_count=2)
        gw.add_task(spec)
        wait_until(lambda: _state(gw, "bad") == "completed", 30)
        failed = gw.failed_tasks_since(None)
        assert [(f.id, f.attempts) for f in failed] == [("bad", 3)]
        assert failed[0].exit_code not in (0, None)
        later = gw.failed_tasks_since(failed[0].state_transition_time)
        assert [f.id for f in later] == ["bad"]  # inclusive watermark; the pipeline dedupes at the boundary
    finally:
        gw.close()


CHILD = """
import sys, time
from shared.batch.local import LocalBatchGateway
from shared.batch.gateway import PoolSpec, TaskSpec
gw = LocalBatchGateway(sys.argv[1], max_slots=1)
gw.ensure_pool(PoolSpec(id="mp3pipe-pool", slots_per_node=1, initial_dedicated_nodes=1))
gw.ensure_job("mp3pipe-pool")
gw.add_task(TaskSpec(id="slow", display_name="slow", resource_files=(), output_files=(),
    command_line="ffmpeg -nostdin -re -f lavfi -i sine=duration=30 -f null -"))
time.sleep(60)
"""


@contextlib.contextmanager
def _host_running_slow(tmp_path) -> Iterator[subprocess.Popen[bytes]]:
    """Another process whose local gateway is running task "slow" (30 s of ffmpeg); killed afterwards."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=os.getcwd())
    try:
        probe = LocalBatchGateway(tmp_path, run_tasks=False)
        wait_until(lambda: _state(probe, "slow") == "running", 30, interval=0.1)
        probe.close()
        yield child
    finally:
        child.kill()
        child.wait()
        subprocess.run(["pkill", "-f", "sine=duration=30"], check=False)


def test_a_task_running_when_its_process_is_killed_runs_again(tmp_path):
    gw = None
    try:
        with _host_running_slow(tmp_path) as child:
            gw = LocalBatchGateway(tmp_path, run_tasks=False)
            assert gw.task_state("slow")[0] == "running"
            gw.close()
            child.send_signal(signal.SIGKILL)
            child.wait()
            gw = LocalBatchGateway(tmp_path, run_tasks=False)  # a restart: recovery requeues it
            assert gw.task_state("slow")[0] == "active"
            assert gw.task_counts().active == 1
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

    port = free_port()
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve_later() -> None:  # nothing listens for the first 2 s: connections are refused
        time.sleep(2.0)
        servers.append(http.server.ThreadingHTTPServer(("127.0.0.1", port), Flaky))
        servers[0].serve_forever()

    threading.Thread(target=serve_later, daemon=True).start()
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
        assert "Retrying" in caplog.text and "s3cr3t" not in caplog.text  # retries are logged, the SAS is not
    finally:
        gw.close()
        for server in servers:
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
        gw._q("UPDATE tasks SET state='running', owner_pid=? WHERE id='before-reboot'", unrelated.pid)
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
