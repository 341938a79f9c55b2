"""Unit tests: the ffmpeg argv presets and the planned Batch task (fixed file names, no blob name in commands)."""

from shared import ffmpeg, planning


def test_default_argv_is_audio_only_with_fixed_names():
    assert ffmpeg.argv() == ["ffmpeg", "-nostdin", "-hide_banner", "-y", "-i", "input.mp4", "-vn", "-map", "0:a:0",
                             "-c:a", "libmp3lame", "-q:a", "2", "output.mp3"]


def test_presets_change_only_the_quality():
    assert ffmpeg.argv("high")[-3:] == ["-q:a", "0", "output.mp3"]
    assert ffmpeg.argv("cbr128")[-3:] == ["-b:a", "128k", "output.mp3"]


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
