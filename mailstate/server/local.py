"""``local:DIR``: a directory that stands for a server's root.

The same server scripts run here with ``MAILSTATE_ROOT=DIR`` and ``MAILSTATE_NO_COMMANDS=1``:
files land in ``DIR/etc/postfix/…``, server programs (postmap, doveconf, reloads) are skipped
and the scripts say so. It is the default target of a domain file used alone, and what the
unit tests apply to.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from mailstate.server.transport import Result, TransportError


class LocalTransport:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.name = f"local:{root}"
        self.round_trips = 0

    def run(self, script: str, args: list[str], stdin: bytes = b"",
            on_line: Callable[[str], None] | None = None,
            idle_timeout: float | None = None) -> Result:
        self.round_trips += 1
        self.root.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MAILSTATE_ROOT": str(self.root), "MAILSTATE_NO_COMMANDS": "1"}
        command = ["sh", "-c", script, "mailstate", *args]
        try:
            if on_line is None:
                done = subprocess.run(command, input=stdin, capture_output=True, env=env,
                                      timeout=600, check=False)
                return Result(done.returncode, done.stdout, done.stderr.replace(b"\0", b""))
            return self._streamed(command, env, stdin, on_line)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TransportError(f"{self.name}: {exc}") from None

    @staticmethod
    def _streamed(command: list[str], env: dict[str, str], stdin: bytes,
                  on_line: Callable[[str], None]) -> Result:
        """Standard output line by line as it comes (stderr to a file: no pipe to fill)."""
        with tempfile.TemporaryFile() as err, subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                env=env) as proc:
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(stdin)
                proc.stdin.close()
            except BrokenPipeError:  # the script refused before reading it: its answer counts
                pass
            out = bytearray()
            for line in proc.stdout:
                out += line
                on_line(line.rstrip(b"\n").decode("utf-8", "replace"))
            code = proc.wait(timeout=600)
            err.seek(0)
            return Result(code, bytes(out), err.read().replace(b"\0", b""))

    def reconnect(self) -> None:
        """Nothing to reconnect: each run is a new process."""

    def close(self) -> None:
        pass
