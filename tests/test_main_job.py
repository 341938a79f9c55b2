"""The main job (`make run`): samples or INPUT=dir OUTPUT=dir, a summary table, and its exit status."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from devhost.azurite import REPO
from devhost.media import make_mp4
from tests.support.media import held_seconds


def run_job(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "devhost.run", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**__import__("os").environ, "COLUMNS": "160"})


def test_samples_convert_and_the_summary_table_is_printed(tmp_path):
    result = run_job("--state", str(tmp_path / "state"), "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mp3pipe summary" in result.stdout and "converted=3 failed=0 pending=0" in result.stdout
    assert (tmp_path / "out" / "talks" / "2024" / "intro.take.2.mp3").exists()  # the sample in a sub-folder


def test_input_and_output_folders_keep_structure_and_a_failure_exits_1(tmp_path):
    src = tmp_path / "in"
    make_mp4(src / "a.mp4", 3.0)
    make_mp4(src / "nested" / "deeper" / "b.c.mp4", 2.0)
    (src / "nested" / "broken.mp4").write_bytes(b"not a video")
    (src / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    result = run_job("--input", str(src), "--output", str(out), "--state", str(tmp_path / "state"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "converted=2 failed=1 pending=0" in result.stdout
    assert re.search(r"dropped .* 3/3", result.stdout)  # progress while it drops and waits
    assert re.search(r"finished .* 3/3 converted 2, failed 1", result.stdout)
    assert abs(held_seconds(out / "a.mp3") - 3.0) < 0.2
    assert abs(held_seconds(out / "nested" / "deeper" / "b.c.mp3") - 2.0) < 0.2
    report = json.loads((out / "nested" / "broken.error.json").read_text())
    assert report["input"] == "nested/broken.mp4" and "the input is not an MP4" in report["reason"]
    assert not (out / "notes.mp3").exists()
    assert "skipped 1 file: not an input (.mp4 .m4v .mov .m4a .3gp): notes.txt" in result.stdout
    # The failed task's log comes back beside its report, as `mp3pipe fetch` brings it.
    assert "Invalid data found when processing input" in (out / "nested" / "broken.stderr.txt").read_text()


def make_run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`make run` itself (setup taken as done: `-o setup`; the shared venv is already installed)."""
    return subprocess.run(["make", "--no-print-directory", "-o", "setup", "run", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env={**__import__("os").environ, "COLUMNS": "160"})


def test_make_run_succeeds_when_files_failed_with_reports_and_says_what_it_skipped(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    make_mp4(src / "good.mp4", 2.0)
    (src / "broken.mp4").write_bytes(b"not a video")
    (src / "notes.txt").write_text("not a video either")
    (src / "clip.mkv").write_bytes(b"matroska")
    result = make_run(f"INPUT={src}", f"OUTPUT={out}", f"STATE={tmp_path / 'state'}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "converted=1 failed=1 pending=0" in result.stdout
    assert re.search(r"broken\.mp4 .* failed: the input is not an MP4", result.stdout)
    assert "skipped 2 files: not an input (.mp4 .m4v .mov .m4a .3gp): clip.mkv, notes.txt" in result.stdout
    assert "Error" not in result.stderr  # no `make: *** [run] Error 1`
    assert (out / "good.mp3").exists() and (out / "broken.error.json").exists()
    assert (out / "broken.stderr.txt").exists()


def test_make_run_fails_with_2_when_the_pipeline_cannot_run(tmp_path):
    result = make_run(f"INPUT={tmp_path / 'missing'}", f"STATE={tmp_path / 'state'}", timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is not a folder" in result.stdout
