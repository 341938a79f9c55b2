"""The mp3pipe command as a person meets it (issue 30), through the real command against real Azurite and the
local host: -o json, --dry-run, retry --failed/--prefix/--yes/--wait, fetch, status newest first within the
terminal's width, --watch's bar over the open files, errors as one line with the fix, help without Python types."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devhost.azurite import REPO, connection_string, free_port
from devhost.local_pipeline import LocalPipeline
from devhost.media import make_mp4
from tests.conftest import isolated


@pytest.fixture(scope="module")
def pipe(azurite, tmp_path_factory):
    with LocalPipeline(tmp_path_factory.mktemp("cli-conv"), settings=isolated(), azurite=azurite) as p:
        yield p


def mp3pipe(env: dict[str, str], *args: str, columns: int = 200, timeout: float = 120,
            stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mp3pipe", *args], cwd=REPO, env={**env, "COLUMNS": str(columns)},
                          capture_output=True, text=True, timeout=timeout, stdin=stdin)


def converted(pipe: LocalPipeline, name: str, data: bytes | Path) -> None:
    etag = pipe.drop(name, data)
    assert pipe.wait({name: etag}, timeout=90)[name].kind in ("converted", "failed")


def test_storage_not_running_is_said_in_seconds_with_how_to_start_it(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "AzureWebJobsStorage": connection_string(free_port()),
           "LOCAL_STATE_DIR": str(tmp_path)}
    began = time.monotonic()
    result = mp3pipe(env, "status")
    took = time.monotonic() - began
    assert result.returncode == 2
    said = result.stdout + result.stderr
    assert took < 8, f"took {took:.1f} s"
    assert re.search(r"storage is not reachable at http://127\.0\.0\.1:\d+/devstoreaccount1/: start it with "
                     r"`make serve`", said), said
    assert "Invalid app settings" not in said and "Traceback" not in said
    assert len(said.strip().splitlines()) == 1


def test_a_missing_path_is_one_line_with_the_fix(tmp_path):
    result = mp3pipe({"PATH": "/usr/bin:/bin", "LOCAL_STATE_DIR": str(tmp_path)}, "drop", str(tmp_path / "nope"))
    assert result.returncode == 2
    said = result.stdout.strip()
    assert said == f"{tmp_path / 'nope'}: no such file or folder: give input files or folders that exist"
    assert not result.stderr


def test_help_reads_like_az_no_python_types():
    for command in ([], ["drop"], ["status"], ["retry"], ["backfill"], ["fetch"]):
        shown = mp3pipe({"PATH": "/usr/bin:/bin"}, *command, "--help").stdout
        assert not re.search(r"<(bool|str|int|float|list\[Path\]|Path)>", shown), shown
        assert "Exit codes: 0 ok; 1 some file failed; 2 usage" in shown
    retry_help = mp3pipe({}, "retry", "--help").stdout
    assert re.search(r"--prefix\s+PREFIX", retry_help) and re.search(r"-o\s+table\|json", retry_help)


def test_drop_dry_run_uploads_nothing_and_json_lists_the_files(pipe, tmp_path):
    folder = tmp_path / "dry"
    make_mp4(folder / "in" / "a.mp4", 1.0, size="64x64")
    result = mp3pipe(pipe.env(), "drop", str(folder), "--prefix", "dry", "--dry-run", "-o", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    said = json.loads(result.stdout)
    assert said["dry_run"] is True and [f["input"] for f in said["files"]] == ["dry/in/a.mp4"]
    assert not list(pipe.service.get_container_client(pipe.input_container).list_blobs(name_starts_with="dry/"))

    table = mp3pipe(pipe.env(), "drop", str(folder), "--prefix", "dry", "--dry-run")
    assert "would drop dry/in/a.mp4" in table.stdout and "dry run: nothing uploaded" in table.stdout

    real = mp3pipe(pipe.env(), "drop", str(folder), "--prefix", "dry", "-o", "json")
    assert real.returncode == 0, real.stdout + real.stderr
    assert [f["input"] for f in json.loads(real.stdout)["files"]] == ["dry/in/a.mp4"]  # bars go to stderr


def test_status_is_newest_first_cut_with_a_hint_and_fits_the_terminal(pipe, media):
    long = "newest/" + "a-very-long-folder-name-" * 4 + "talk.mp4"
    for name in ("newest/old.mp4", "newest/middle.mp4", long):
        converted(pipe, name, media["tone"])
    converted(pipe, "newest/bad.mp4", b"not a video at all")

    result = mp3pipe(pipe.env(), "status", "--prefix", "newest/", "--limit", "2", columns=80)
    assert result.returncode == 1  # one file failed
    rows = [line for line in result.stdout.splitlines() if "│" in line]
    assert "bad.mp4" in rows[0] and "talk.mp4" not in rows[0]  # the newest first
    assert "…" in rows[1] and "done" in rows[1]  # the long name is cut, its state is whole
    assert not any("old.mp4" in r or "middle.mp4" in r for r in rows)
    assert "... and 2 more, older (show them with --limit 4, or narrow with --prefix P)" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert re.search(r"│\s+failed\s+│", rows[0])


def test_watch_counts_only_what_is_still_open(pipe, media):
    for i in range(3):
        converted(pipe, f"watch/done{i}.mp4", media["tone"])
    pipe.stop_host()  # the new file stays waiting until the watch has begun
    try:
        pipe.drop("watch/new.mp4", media["tone"].read_bytes())
        watch = subprocess.Popen([sys.executable, "-m", "mp3pipe", "status", "--prefix", "watch/", "--watch",
                                  "--interval", "0.5"], cwd=REPO, env={**pipe.env(), "COLUMNS": "200"},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
    finally:
        pipe.start_host()
        pipe.wait_host_ready()
    out, err = watch.communicate(timeout=120)
    assert watch.returncode == 0, out + err
    bars = re.findall(r"finished \(of the files open since the watch began\).*?(\d+)/(\d+)", out)
    assert bars and bars[-1] == ("1", "1"), out  # the new file only, not the three done before it
    assert "done 4" in out


def test_retry_failed_asks_first_never_blocks_a_script_and_waits_for_the_outcome(pipe, media):
    converted(pipe, "again/good.mp4", media["tone"])
    converted(pipe, "again/bad.mp4", b"still not a video")
    converted(pipe, "again/worse.mp4", b"not one either")

    scripted = mp3pipe(pipe.env(), "retry", "--failed", "--prefix", "again/")
    assert scripted.returncode == 2
    assert "2 failed file(s) under 'again/' to convert again" in scripted.stdout
    assert "add --yes to confirm" in scripted.stdout

    dry = mp3pipe(pipe.env(), "retry", "--failed", "--prefix", "again/", "--dry-run", "-o", "json")
    assert dry.returncode == 0 and json.loads(dry.stdout) == {"dry_run": True,
                                                              "retry": ["again/bad.mp4", "again/worse.mp4"]}
    report = pipe.service.get_blob_client(pipe.input_container, "again/bad.mp4").get_blob_properties()
    assert "mp3pipe_retry" not in report.metadata  # the dry run changed nothing

    waited = mp3pipe(pipe.env(), "retry", "--failed", "--prefix", "again/", "--yes", "--wait", "--interval", "0.5")
    assert waited.returncode == 1, waited.stdout  # they failed again
    for name in ("bad", "worse"):
        assert re.search(rf"again/{name}\.mp4: submitted \(task ", waited.stdout), waited.stdout
        assert re.search(rf"again/{name}\.mp4: failed the input is not an MP4", waited.stdout), waited.stdout
    assert "good.mp4" not in waited.stdout

    one = mp3pipe(pipe.env(), "retry", "again/good.mp4", "--wait", "--interval", "0.5", "-o", "json")
    assert one.returncode == 0, one.stdout
    assert json.loads(one.stdout)["outcomes"] == [{"input": "again/good.mp4", "state": "done",
                                                  "output": "again/good.mp3", "reason": ""}]


def test_retry_needs_a_name_or_a_selection(pipe):
    result = mp3pipe(pipe.env(), "retry")
    assert result.returncode == 2 and "give either one NAME, or --prefix P and/or --failed" in result.stdout


def test_fetch_downloads_mp3s_reports_and_task_logs_keeping_folders(pipe, media, tmp_path):
    converted(pipe, "get/day1/talk.mp4", media["tone"])
    converted(pipe, "get/day2/broken.mp4", b"nope")
    dest = tmp_path / "out"
    result = mp3pipe(pipe.env(), "fetch", "get/", str(dest))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fetched 1 MP3(s), 1 failure report(s) and 1 task log(s)" in result.stdout
    mp3 = dest / "get" / "day1" / "talk.mp3"
    assert mp3.read_bytes()[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3") or mp3.stat().st_size > 1000
    report = json.loads((dest / "get" / "day2" / "broken.error.json").read_text())
    assert report["input"] == "get/day2/broken.mp4"
    assert (dest / "get" / "day2" / "broken.stderr.txt").read_text().strip()
    assert not list(dest.rglob("*.partial"))

    as_json = mp3pipe(pipe.env(), "fetch", "get/day1/", str(tmp_path / "again"), "-o", "json")
    assert [f["kind"] for f in json.loads(as_json.stdout)["files"]] == ["mp3"]


def test_backfill_dry_run_names_what_it_would_submit_and_submits_nothing(pipe, media):
    pipe.stop_host()  # nobody else submits the file meanwhile
    try:
        container = pipe.service.get_container_client(pipe.input_container)
        container.upload_blob("missed/quiet.mp4", media["tone"].read_bytes())  # no event, no listing yet
        result = mp3pipe(pipe.env(), "backfill", "--dry-run", "-o", "json")
        assert result.returncode == 0, result.stdout
        assert "missed/quiet.mp4" in json.loads(result.stdout)["would_submit"]
        table = mp3pipe(pipe.env(), "backfill", "--dry-run")
        assert "would submit missed/quiet.mp4" in table.stdout and "dry run: nothing submitted" in table.stdout
        status = json.loads(mp3pipe(pipe.env(), "status", "--prefix", "missed/", "-o", "json").stdout)
        assert [(f["input"], f["state"]) for f in status["files"]] == [("missed/quiet.mp4", "waiting")]
    finally:
        pipe.start_host()
        pipe.wait_host_ready()


def test_retry_on_a_terminal_asks_and_no_changes_nothing(pipe, media):
    import os
    import pty

    converted(pipe, "ask/bad.mp4", b"no video here")
    before = pipe.service.get_blob_client(pipe.input_container, "ask/bad.mp4").get_blob_properties().etag
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "mp3pipe", "retry", "--failed", "--prefix", "ask/"], cwd=REPO,
                                env={**pipe.env(), "COLUMNS": "200"}, stdin=follower, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        os.write(leader, b"n\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    assert proc.returncode == 0, out + err
    assert "1 failed file(s) under 'ask/' to convert again" in out
    assert "Convert again 1 file(s)? [y/N]" in out and "nothing retried" in out
    after = pipe.service.get_blob_client(pipe.input_container, "ask/bad.mp4").get_blob_properties().etag
    assert after == before
