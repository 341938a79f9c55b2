"""The Batch stand-in's node-side upload: a finished task's output files put to their containers as Batch does,
each a Put Blob carrying the destination's `uploadHeaders` as HTTP headers, to real storage (Azurite)."""

from __future__ import annotations

import fnmatch
import posixpath
import re
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import urllib3

STORAGE_VERSION = "2025-01-05"  # the x-ms-version the node sends (Azurite runs with --skipApiVersionCheck)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110 token)


class UploadHeaderError(ValueError):
    """An uploadHeaders entry that cannot travel as an HTTP header (Storage would refuse the upload)."""


def check_headers(headers: dict[str, str]) -> None:
    """Names must be tokens, values visible ASCII (and spaces): anything else never reaches Storage intact."""
    for name, value in headers.items():
        if not _TOKEN.match(name):
            raise UploadHeaderError(f"upload header name {name!r} is not an HTTP token")
        if not all(" " <= ch <= "~" for ch in value):
            raise UploadHeaderError(f"upload header {name!r} has a value that is not printable ASCII: {value!r}")


def blob_url(container_url: str, name: str) -> str:
    """The blob's URL inside a (SAS) container URL: the name percent-encoded, the query kept."""
    parts = urlsplit(container_url)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{quote(name, safe='/')}"))


def upload_outputs(task: dict[str, Any], files: dict[str, bytes], *, success: bool) -> list[str]:
    """Upload the files (paths relative to the task's working directory -> content) that match the task's output
    rules for this outcome; returns the blob names written, in order."""
    wanted = {"taskcompletion", "tasksuccess" if success else "taskfailure"}
    written = []
    http = urllib3.PoolManager(retries=False)
    for rule in task.get("outputFiles", []):
        if rule["uploadOptions"]["uploadCondition"].lower() not in wanted:
            continue
        dest = rule["destination"]["container"]
        headers = {h["name"]: h.get("value", "") for h in dest.get("uploadHeaders", [])}
        check_headers(headers)
        pattern = rule["filePattern"]
        wildcard = any(ch in pattern for ch in "*?[")
        for path, data in sorted(files.items()):
            if not fnmatch.fnmatchcase(path, pattern):
                continue
            base = posixpath.basename(path)
            folder = dest.get("path", "")
            name = (f"{folder.rstrip('/')}/{base}" if folder else base) if wildcard else (folder or base)
            response = http.request("PUT", blob_url(dest["containerUrl"], name), body=data, headers={
                "x-ms-blob-type": "BlockBlob", "x-ms-version": STORAGE_VERSION, **headers})
            if response.status != 201:
                raise RuntimeError(f"upload of {name!r} failed: {response.status} {response.data[:300]!r}")
            written.append(name)
    return written
