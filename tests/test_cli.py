"""The mp3pipe command against real Azurite and the local pipeline: drop, status --watch, status, retry."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from devhost.azurite import DEV_KEY, REPO
from devhost.local_pipeline import LocalPipeline
from devhost.media import make_mp4
from tests.conftest import isolated


@pytest.fixture(scope="module")
def pipe(azurite, tmp_path_factory):
    settings = isolated()
    with LocalPipeline(tmp_path_factory.mktemp("cli"), settings=settings, azurite=azurite) as p:
        yield p


def mp3pipe(pipe: LocalPipeline, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mp3pipe", *args], cwd=REPO, env={**pipe.env(), "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=timeout)


def test_drop_a_folder_watch_it_finish_see_the_failure_and_retry_it(pipe, media, tmp_path):
    folder = tmp_path / "batch"
    for i in range(9):
        make_mp4(folder / ("sub" if i % 3 == 0 else "") / f"clip{i}.mp4", 2.0, frequency=300 + 50 * i, size="64x64")
    (folder / "broken.mp4").write_bytes(b"not a video at all")
    (folder / "sub" / "notes.txt").write_text("not an input")
    (folder / "sub" / "_mp3pipe.json").write_text('{"preset": "standard"}')  # its folder's settings go up too

    dropped = mp3pipe(pipe, "drop", str(folder))
    assert dropped.returncode == 0, dropped.stderr
    assert "dropped 10 file(s)" in dropped.stdout
    assert "skipped 1 file: not an input (.mp4 .m4v .mov .m4a .3gp): sub/notes.txt" in dropped.stderr
    assert "dropped the folder settings sub/_mp3pipe.json" in dropped.stderr
    inputs = pipe.service.get_container_client(pipe.input_container)
    assert inputs.get_blob_client("sub/_mp3pipe.json").download_blob().readall() == b'{"preset": "standard"}'

    watched = mp3pipe(pipe, "status", "--watch", "--interval", "0.5")
    assert watched.returncode == 1  # it ended (nothing left to convert) and one file failed
    assert "done 9" in watched.stdout and "failed 1" in watched.stdout

    status = mp3pipe(pipe, "status", "--json")
    report = json.loads(status.stdout)
    states = {f["input"]: f["state"] for f in report["files"]}
    assert states["sub/clip0.mp4"] == "done" and states["broken.mp4"] == "failed"
    broken = next(f for f in report["files"] if f["input"] == "broken.mp4")
    assert "the input is not an MP4" in broken["reason"] and broken["output"] == "broken.error.json"
    table = mp3pipe(pipe, "status")
    assert re.search(r"broken\.mp4\s+│\s+failed\s+│\s+the input is not an MP4", table.stdout), table.stdout

    fixed = tmp_path / "fixed"
    make_mp4(fixed / "broken.mp4", 2.0)
    assert mp3pipe(pipe, "drop", str(fixed / "broken.mp4")).returncode == 0
    retried = mp3pipe(pipe, "retry", "broken.mp4")
    assert retried.returncode == 0 and "submitted" in retried.stdout
    final = mp3pipe(pipe, "status", "--watch", "--interval", "0.5")
    assert final.returncode == 0 and "done 10" in final.stdout and "failed 0" in final.stdout


def test_retry_of_a_missing_file_says_so(pipe):
    result = mp3pipe(pipe, "retry", "no/such.mp4")
    assert result.returncode == 2 and "is not in container" in result.stdout


def test_logs_are_one_json_event_per_line_and_carry_no_secrets(pipe, media):
    etag = pipe.drop("logs/check.mp4", media["tone"])
    assert pipe.wait({"logs/check.mp4": etag}, timeout=60)["logs/check.mp4"].kind == "converted"
    log = pipe.log_path.read_text()
    assert DEV_KEY not in log and "AccountKey" not in log
    assert not re.search(r"sig=(?!REDACTED)", log)
    events = [json.loads(line.split(" mp3pipe ", 1)[1]) for line in log.splitlines() if " INFO mp3pipe {" in line]
    submitted = [e for e in events if e["event"] == "submitted" and e["name"] == "logs/check.mp4"]
    assert len(submitted) == 1 and submitted[0]["etag"] == etag and submitted[0]["task_id"]
