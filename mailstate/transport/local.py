"""``local:DIR``: a directory that stands for a server's root.

The same server scripts run here with ``MAILSTATE_ROOT=DIR`` and ``MAILSTATE_NO_COMMANDS=1``:
files land in ``DIR/etc/postfix/…``, server programs (postmap, doveconf, reloads) are skipped
and the scripts say so. It is the default target of a domain file used alone, and what the
unit tests apply to.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .base import Result, TransportError


class LocalTransport:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.name = f"local:{root}"
        self.round_trips = 0

    def run(self, script: str, args: list[str], stdin: bytes = b"") -> Result:
        self.round_trips += 1
        self.root.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MAILSTATE_ROOT": str(self.root), "MAILSTATE_NO_COMMANDS": "1"}
        try:
            done = subprocess.run(["sh", "-c", script, "mailstate", *args], input=stdin,
                                  capture_output=True, env=env, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TransportError(f"{self.name}: {exc}") from None
        return Result(done.returncode, done.stdout, done.stderr)

    def close(self) -> None:
        pass
