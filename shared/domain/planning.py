"""Blob version -> the conversion task Batch runs: fixed file names, output and log rules, upload headers (pure).

Each output carries Put Blob headers (Batch's `uploadHeaders` of an output file's container destination; Microsoft's
Batch REST spec allows Put Blob's request headers for all blob types, which include `x-ms-blob-content-type` and
`x-ms-meta-<name>`): its content type and, for an MP3, metadata naming its source. Metadata values must be plain
ASCII (they travel as HTTP headers) and blob names are any Unicode: every value is percent-encoded (RFC 3986: its
UTF-8 bytes, each byte outside `A-Z a-z 0-9 - . _ ~ /` as `%XX`), which `decode` (Python's `urllib.parse.unquote`,
JavaScript's `decodeURIComponent`) reverses exactly.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from shared.domain import ffmpeg, naming
from shared.ports.batch import OutputFile, ResourceFile, TaskSpec

ENV_INPUT_BLOB = "MP3PIPE_INPUT_BLOB"
ENV_INPUT_ETAG = "MP3PIPE_INPUT_ETAG"
ENV_PRESET = "MP3PIPE_PRESET"  # the preset the task converts with (its folder's, else the app's): for its outcome

Headers = tuple[tuple[str, str], ...]

CONTENT_TYPE = "x-ms-blob-content-type"  # applies on Put Blob and on Put Block List alike, unlike Content-Type
META_PREFIX = "x-ms-meta-"
MP3_CONTENT_TYPE = "audio/mpeg"
LOG_CONTENT_TYPE = "text/plain; charset=utf-8"
META_INPUT = "mp3pipe_input"  # the input blob's name
META_INPUT_ETAG = "mp3pipe_input_etag"  # the input version converted
META_PRESET = "mp3pipe_preset"  # the preset it was converted with
MAX_METADATA = 8 * 1024  # Azure Storage's cap on a blob's metadata, names and values together

LOG_HEADERS: Headers = ((CONTENT_TYPE, LOG_CONTENT_TYPE),)


def encode(value: str) -> str:
    """Percent-encode a metadata value: ASCII letters, digits, `-._~/` kept, every other UTF-8 byte as %XX."""
    return quote(value, safe="/")


def decode(value: str) -> str:
    """The value `encode` was given."""
    return unquote(value, errors="strict")


def source_metadata(name: str, etag: str, preset: str) -> dict[str, str]:
    """The metadata naming an MP3's source: input name, input ETag, preset (values percent-encoded).

    A name so long that its encoding would pass Azure's 8 KiB metadata cap (over ~900 characters of CJK text)
    is left out rather than fail the upload; the MP3's own name mirrors it and the ETag and preset stay.
    """
    meta = {META_INPUT: encode(name), META_INPUT_ETAG: encode(naming.clean_etag(etag)), META_PRESET: encode(preset)}
    if sum(len(k) + len(v) for k, v in meta.items()) > MAX_METADATA:
        del meta[META_INPUT]
    return meta


def mp3_headers(name: str, etag: str, preset: str) -> Headers:
    """Put Blob headers for an MP3: `audio/mpeg`, and the metadata naming its source."""
    meta = source_metadata(name, etag, preset)
    return ((CONTENT_TYPE, MP3_CONTENT_TYPE), *((META_PREFIX + k, v) for k, v in meta.items()))


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
                       mp3_headers(name, etag, preset)),
            OutputFile("../std*.txt", output_container_url, naming.logs_folder(tid), "taskfailure",
                       LOG_HEADERS),
        ),
        # The name travels as data (an environment value), never as part of the command line.
        environment=((ENV_INPUT_BLOB, name), (ENV_INPUT_ETAG, naming.clean_etag(etag)), (ENV_PRESET, preset)),
        max_task_retry_count=max_retries,
        max_wall_clock_seconds=max_wall_clock_seconds,
        retention_seconds=retention_seconds,
        required_slots=required_slots,
    )
