"""Where this machine keeps mailstate's records (the plan cache's and the per-file records),
and when a folder of them can be trusted: both kinds follow the same rules."""

from __future__ import annotations

import os
from pathlib import Path

ENV = "MAILSTATE_CACHE_DIR"  # the folder, when set; else $XDG_CACHE_HOME/mailstate


def cache_dir() -> Path:
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mailstate"


def private(folder: Path) -> bool:
    """Only a folder of this user that nobody else can write holds records we trust."""
    try:
        info = folder.stat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & 0o022
