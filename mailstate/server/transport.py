"""What every target does: run a fixed script with data on stdin, in one round trip.

A target (``local:DIR`` or ``ssh://user@host``) only knows how to run ``sh`` with a script
and bytes on standard input and to return what came back. The scripts themselves
(``templates/server-*.sh``) are the same for both, so the local target that unit tests use
runs the very code a real server runs, minus the server programs.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class TransportError(Exception):
    """The target could not be reached or a script failed; the message says which and why."""


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def message(self) -> str:
        return (self.stderr or self.stdout).decode("utf-8", "replace").strip()


class Transport(Protocol):
    name: str
    round_trips: int

    def run(self, script: str, args: list[str], stdin: bytes = b"",
            on_line: Callable[[str], None] | None = None,
            idle_timeout: float | None = None) -> Result:
        """Run `sh -c script sh args...` on the target with stdin; one round trip.
        `on_line` is called with each line of standard output as it arrives."""
        ...

    def reconnect(self) -> None:
        """Open a new connection after the old one was lost."""
        ...

    def close(self) -> None: ...


class LineFeed:
    """Calls `on_line` with each complete line of a growing output, once."""

    def __init__(self, on_line: Callable[[str], None] | None) -> None:
        self.on_line = on_line
        self.done = 0

    def feed(self, data: bytes | bytearray) -> None:
        if self.on_line is None:
            return
        end = data.rfind(b"\n")
        if end < self.done:
            return
        for line in bytes(data[self.done:end]).split(b"\n"):
            self.on_line(line.decode("utf-8", "replace"))
        self.done = end + 1


FAULT_ENV = "MAILSTATE_FAULT"  # test-only fault hook of the server scripts (server-lib.sh)
TIMES_ENV = "MAILSTATE_TIMES"  # the benchmark's: each step's time on the scripts' stderr


def sh_command(script_text: str, args: list[str]) -> str:
    """A fixed script plus validated arguments as one shell command line. The test-only fault
    hook and the benchmark's timing switch, when set in this process, are passed on to the
    server like on the local target."""
    env = [f"{name}={shlex.quote(os.environ[name])}" for name in (FAULT_ENV, TIMES_ENV)
           if os.environ.get(name)]
    return " ".join([*(["env", *env] if env else []), "sh", "-c", shlex.quote(script_text),
                     "mailstate", *(shlex.quote(a) for a in args)])
