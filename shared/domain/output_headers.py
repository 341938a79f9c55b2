"""The headers each output blob is uploaded with: its content type and, for an MP3, metadata naming its source (pure).

Batch uploads a task's output files with the headers the task names (`uploadHeaders` of an output file's container
destination), and Microsoft's Batch REST spec defines the allowed ones as Put Blob's request headers for all blob
types, which include `x-ms-blob-content-type` and `x-ms-meta-<name>`. So the headers here are Put Blob headers; the
local gateway maps the same ones onto its upload (`blob_properties`).

Metadata values must be plain ASCII (they travel as HTTP headers), and blob names are any Unicode: every value is
percent-encoded (RFC 3986: its UTF-8 bytes, each byte outside `A-Z a-z 0-9 - . _ ~ /` as `%XX`), which `decode`
(Python's `urllib.parse.unquote`, JavaScript's `decodeURIComponent`) reverses exactly.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from shared.domain import naming

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


def blob_properties(headers: Headers) -> tuple[str | None, dict[str, str]]:
    """Put Blob headers -> (content type, metadata), as an upload through the storage SDK takes them."""
    content_type: str | None = None
    metadata: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key == CONTENT_TYPE:
            content_type = value
        elif key.startswith(META_PREFIX):
            metadata[name[len(META_PREFIX):]] = value
        else:
            raise ValueError(f"no local mapping for the upload header {name!r}")
    return content_type, metadata
