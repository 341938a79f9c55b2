"""The storage side's own count of writes: every blob commit Azurite's debug log records, with its ETag."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

# Operations that make a blob's content (a new version, a new ETag); staging a block or reading commits nothing.
COMMITS = frozenset({"BlockBlob_Upload", "BlockBlob_CommitBlockList", "BlockBlob_PutBlobFromUrl", "Blob_CopyFromURL",
                     "Blob_StartCopyFromURL", "PageBlob_Create", "AppendBlob_Create"})
_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.]+Z) (\S*)\s*\w+: (.*)$")
_CONTEXT = re.compile(r"^BlobStorageContextMiddleware: Account=(\S*) Container=(\S*) Blob=(.*)$")
_END = re.compile(r"^EndMiddleware: End response\. TotalTimeInMS=\S* StatusCode=(\d+) StatusMessage=.*? "
                  r"Headers=(\{.*\})$")
STARTED = "Azurite Blob service is starting"


def _epoch(iso: str) -> float:
    """An Azurite log time (ISO 8601, UTC) in seconds since the epoch."""
    return dt.datetime.fromisoformat(iso).timestamp()


@dataclass(frozen=True)
class Commit:
    """One write Azurite answered 2xx: which blob, how, when (Azurite's clock) and the ETag it gave."""

    container: str
    blob: str
    operation: str
    etag: str
    at: str

    @property
    def epoch(self) -> float:
        """When Azurite answered it, in seconds since the epoch (the clock the gateway's history uses)."""
        return _epoch(self.at)


class CommitLog:
    """Reads an Azurite `--debug` log as it grows (each call reads only what was appended since the last)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._offset = 0
        self._open: dict[str, dict[str, str]] = {}  # request id -> what its log lines said so far
        self._commits: list[Commit] = []
        self.starts: list[float] = []  # when an Azurite process started writing this log (epoch seconds)

    def _read(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written is read next time
        self._offset += len(complete)
        for raw in complete.decode("utf-8", errors="replace").splitlines():
            match = _LINE.match(raw)
            if match is None:
                continue  # a blob name with a line break continues the previous line: not a name we count
            at, request, message = match.groups()
            if message.startswith(STARTED):
                self.starts.append(_epoch(at))
                self._open.clear()  # a new process: requests the last one never answered never will be
                continue
            if not request:
                continue
            if context := _CONTEXT.match(message):
                self._open.setdefault(request, {}).update(container=context[2], blob=context[3])
            elif message.startswith("DispatchMiddleware: Operation="):
                self._open.setdefault(request, {})["operation"] = message.split("=", 1)[1]
            elif end := _END.match(message):
                seen = self._open.pop(request, {})
                if seen.get("operation") in COMMITS and 200 <= int(end[1]) < 300:
                    etag = str(json.loads(end[2]).get("etag", "")).strip('"')
                    self._commits.append(Commit(seen.get("container", ""), seen.get("blob", ""), seen["operation"],
                                                etag, at))

    def commits(self, container: str, *, settle: float = 5.0) -> list[Commit]:
        """Every commit into `container` so far, oldest first; waits up to `settle` s for commits Azurite has
        begun (logged their operation) but not yet answered, so a write that just finished is not missed."""
        deadline = time.monotonic() + settle
        while True:
            self._read()
            pending = any(r.get("container") == container and r.get("operation") in COMMITS
                          for r in self._open.values())
            if not pending or time.monotonic() >= deadline:
                return [c for c in self._commits if c.container == container]
            time.sleep(0.05)
