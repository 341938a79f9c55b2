"""Blob version -> the conversion task Batch runs: fixed file names, output and log rules (pure)."""

from __future__ import annotations

from shared.domain import ffmpeg, naming, output_headers
from shared.ports.batch import OutputFile, ResourceFile, TaskSpec

ENV_INPUT_BLOB = "MP3PIPE_INPUT_BLOB"
ENV_INPUT_ETAG = "MP3PIPE_INPUT_ETAG"


def plan_task(
    name: str,
    etag: str,
    *,
    input_url: str,
    output_container_url: str,
    preset: str = "standard",
    max_retries: int = 1,
    max_wall_clock_seconds: int = 3600,
    retention_seconds: int = 7 * 24 * 3600,
    required_slots: int = 1,
) -> TaskSpec:
    """One task per blob version: download to input.mp4, ffmpeg to output.mp3, upload to the mirrored name."""
    tid = naming.task_id(name, etag)
    return TaskSpec(
        id=tid,
        display_name=naming.display_name(name),
        command_line=ffmpeg.command_line(preset),
        resource_files=(ResourceFile(http_url=input_url, file_path=ffmpeg.INPUT_FILE),),
        output_files=(
            OutputFile(ffmpeg.OUTPUT_FILE, output_container_url, naming.output_name(name), "tasksuccess",
                       output_headers.mp3_headers(name, etag, preset)),
            OutputFile("../std*.txt", output_container_url, naming.logs_folder(tid), "taskfailure",
                       output_headers.LOG_HEADERS),
        ),
        # The name travels as data (an environment value), never as part of the command line.
        environment=((ENV_INPUT_BLOB, name), (ENV_INPUT_ETAG, naming.clean_etag(etag))),
        max_task_retry_count=max_retries,
        max_wall_clock_seconds=max_wall_clock_seconds,
        retention_seconds=retention_seconds,
        required_slots=required_slots,
    )
