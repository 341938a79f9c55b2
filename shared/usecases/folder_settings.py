"""The settings one input converts with: its folders' `_mp3pipe.json` files read (one ranged GET per folder level,
all at once) and resolved by shared/domain/folder_settings.py; raises BadFolderSettings for a bad file on the way."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from shared.domain import folder_settings
from shared.domain.folder_settings import FolderSettings
from shared.ports.deps import Deps

# Shared by every submit in the process: a file's folder levels are read at once, without a pool per file.
_READERS = ThreadPoolExecutor(8, thread_name_prefix="folder-settings")


def settings_for(deps: Deps, name: str) -> FolderSettings:
    """The preset (and the file that chose it) for the input `name`. Read at every submit, uncached, so a settings
    file written before a file is submitted applies to it."""
    s = deps.settings
    paths = folder_settings.candidates(name)

    def read(path: str) -> bytes | None:
        return deps.storage.read_head(s.input_container, path, folder_settings.MAX_BYTES + 1)

    found = [read(paths[0])] if len(paths) == 1 else list(_READERS.map(read, paths))
    return folder_settings.resolve(s.ffmpeg_preset, list(zip(paths, found, strict=True)))
