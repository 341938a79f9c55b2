"""Unit tests: the task's command line (the node runner, compressed) and the planned Batch task (no blob name)."""

import shlex
import subprocess
import sys

from shared.domain import ffmpeg, planning
from shared.node import convert, presets


def test_the_command_line_is_the_runner_and_a_preset_and_nothing_else():
    argv = shlex.split(ffmpeg.command_line("high"))
    assert argv[:5] == ["python3", "-I", "-S", "-c", ffmpeg.BOOTSTRAP] and argv[6:] == ["high"] and len(argv) == 7
    assert set(argv[5]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def test_the_runner_in_the_command_line_runs_on_its_own(tmp_path):
    """What the node runs: a bare python3 in an empty folder, no repo on its path, finds no input and says so."""
    argv = shlex.split(ffmpeg.command_line())
    done = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 66
    assert done.stderr.strip().splitlines()[-1] == "mp3pipe: the input file was not available to the task"


def test_presets_change_only_the_quality():
    high, cbr = ffmpeg.argv("high"), ffmpeg.argv("cbr128")
    assert high[high.index("-c:a") + 1:high.index("-c:a") + 4] == ["libmp3lame", "-q:a", "0"]
    assert cbr[cbr.index("-c:a") + 1:cbr.index("-c:a") + 4] == ["libmp3lame", "-b:a", "128k"]
    assert high[-1] == "output.mp3" and "input.mp4" in high


def test_an_mp3_track_is_copied_only_by_the_default_preset():
    track = convert.mp4.AudioTrack(2, 1, True, "mp3", 44100, 2, 10.0)
    assert convert.copies(presets.PRESETS["standard"], track)
    assert not convert.copies(presets.PRESETS["high"], track)
    aac = convert.mp4.AudioTrack(2, 1, True, "mp4a", 44100, 2, 10.0)
    assert not convert.copies(presets.PRESETS["standard"], aac)
    args = convert.ffmpeg_args("ffmpeg", presets.PRESETS["standard"], track)
    assert args[args.index("-map") + 1] == "0:i:2" and args[args.index("-c:a") + 1] == "copy"


def test_planned_task_never_carries_the_blob_name_in_its_command_line():
    name = "evil $(touch pwned); `id` && rm -rf ~ | x.mp4"
    task = planning.plan_task(name, "0x1", input_url="http://h/in/x?sig=s", output_container_url="http://h/out?sig=s")
    assert name not in task.command_line and "touch" not in task.command_line
    assert task.command_line == ffmpeg.command_line()
    assert [(r.file_path) for r in task.resource_files] == ["input.mp4"]
    mp3_rule, log_rule = task.output_files
    assert (mp3_rule.pattern, mp3_rule.path, mp3_rule.upload_condition) == (
        "output.mp3", "evil $(touch pwned); `id` && rm -rf ~ | x.mp3", "tasksuccess")
    assert (log_rule.pattern, log_rule.upload_condition) == ("../std*.txt", "taskfailure")
    assert task.env()[planning.ENV_INPUT_BLOB] == name
