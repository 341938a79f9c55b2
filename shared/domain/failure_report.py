"""What a failure report says: why a conversion failed, in words a user understands, and the report's JSON."""

from __future__ import annotations

import datetime as dt
from typing import Any

RUNNER_PREFIX = "mp3pipe: "  # how the task runner (shared/node/convert.py) states why a task failed

# ffmpeg's stderr phrases -> what happened, in order of precedence.
_REASONS: tuple[tuple[str, str], ...] = (
    ("matches no streams", "the input has no audio stream"),
    ("does not contain any stream", "the input has no audio stream"),
    ("moov atom not found", "the input is not a complete MP4 (moov atom not found: empty, truncated or not an MP4)"),
    ("Invalid data found when processing input", "the input is not a readable audio or video file (invalid data)"),
    ("End of file", "the input is truncated (unexpected end of file)"),
    ("No such file or directory", "the input file was not available to ffmpeg"),
)


def reason_from(stderr_tail: str, failure_message: str, exit_code: int | None) -> str:
    """One sentence: the task runner's own verdict, else the known cause from ffmpeg's stderr, else Batch's failure,
    else the last stderr line."""
    verdicts = [line[len(RUNNER_PREFIX):].strip() for line in stderr_tail.splitlines()
                if line.startswith(RUNNER_PREFIX) and not line.startswith(RUNNER_PREFIX + "converted")]
    if verdicts:
        return verdicts[-1]
    for phrase, reason in _REASONS:
        if phrase in stderr_tail:
            return reason
    if failure_message:
        return failure_message
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
    if lines:
        return f"ffmpeg failed (exit code {exit_code}): {lines[-1]}"
    return f"conversion failed with exit code {exit_code}"


def build_report(
    *,
    input_name: str,
    etag: str,
    task_id: str | None,
    exit_code: int | None,
    reason: str,
    stderr_tail: str,
    attempts: int,
    finished_at: dt.datetime,
    logs: str | None = None,
) -> dict[str, Any]:
    return {
        "input": input_name,
        "etag": etag,
        "task_id": task_id,
        "exit_code": exit_code,
        "reason": reason,
        "stderr_tail": stderr_tail[-4000:],
        "attempts": attempts,
        "finished_at": finished_at.astimezone(dt.UTC).isoformat(),
        "logs": logs,
        "retry": "upload the file again (a new version is converted), or run: mp3pipe retry NAME",
    }
