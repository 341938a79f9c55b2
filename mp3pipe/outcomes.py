"""Files chosen by state and prefix, and waiting for their outcomes: what `retry --failed/--prefix/--wait` use."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection

from shared.ports.deps import Deps
from shared.usecases.status import UNFINISHED, FileStatus, collect

EVERY_FILE = 10**9  # no cut: a command acting on files must see all of them


def select(deps: Deps, prefix: str, *, failed_only: bool) -> list[FileStatus]:
    """The input files under `prefix` (every one, or only those whose newest version failed), in name order."""
    files = collect(deps, prefix, limit=EVERY_FILE).files
    return [f for f in files if not failed_only or f.state == "failed"]


def wait(deps: Deps, names: Collection[str], interval: float,
         refreshed: Callable[[list[FileStatus]], object] = lambda files: None) -> list[FileStatus]:
    """Poll until each named file is done or failed (a file deleted meanwhile is left out); returns their statuses.
    `refreshed` sees the named files after each look."""
    common = os.path.commonprefix(list(names))
    prefix = common[: common.rfind("/") + 1]  # a folder: the outputs are listed under the same prefix (a.mp3)
    wanted = set(names)
    while True:
        files = [f for f in collect(deps, prefix, limit=EVERY_FILE).files if f.name in wanted]
        refreshed(files)
        if not any(f.state in UNFINISHED for f in files):
            return files
        time.sleep(interval)
