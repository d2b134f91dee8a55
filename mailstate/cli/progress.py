"""What a person sees while a run works: a live line per server, or timestamped lines.

On a terminal each server has one line that is rewritten in place (step, detail, elapsed
seconds); in CI (``CI`` set), when output is piped, or with ``-v``, every step is one plain line
``HH:MM:SS server: step detail`` with no control codes. Errors and what a server's scripts
printed are written as they happen, above the live lines. Colour only on a terminal and never
with ``NO_COLOR`` set (https://no-color.org).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from mailstate.views.text import Line

QUIET, NORMAL, VERBOSE = 0, 1, 2
_CODES = {"red": "31", "green": "32", "yellow": "33", "dim": "2", "bold": "1"}
_TONE_COLOUR = {"add": "green", "change": "yellow", "remove": "red", "warning": "yellow"}


def colour_enabled(stream: TextIO) -> bool:
    return "NO_COLOR" not in os.environ and stream.isatty() and os.environ.get("TERM") != "dumb"


def paint(text: str, colour: str | None, enabled: bool) -> str:
    if not enabled or not colour:
        return text
    return f"\x1b[{_CODES[colour]}m{text}\x1b[0m"


def colour_plan(lines: list[Line], enabled: bool) -> str:
    """A plan's lines with + ~ - lines coloured as Terraform colours them, warnings yellow."""
    return "".join(paint(line.text, _TONE_COLOUR.get(line.tone or ""), enabled) + "\n"
                   for line in lines)


class View:
    """Receives the manager's (server, step, detail) calls from its worker threads."""

    def __init__(self, verbosity: int = NORMAL, err: TextIO | None = None,
                 out: TextIO | None = None) -> None:
        self.err = err or sys.stderr
        self.out = out or sys.stdout
        self.verbosity = verbosity
        self.colour = colour_enabled(self.err)
        self.live = (verbosity == NORMAL and self.err.isatty() and not os.environ.get("CI")
                     and os.environ.get("TERM") != "dumb")
        self.lock = threading.RLock()
        self.rows: dict[str, list] = {}  # server -> [step, detail, started, finished]
        self.drawn = 0
        self.ticker: threading.Thread | None = None
        self.stopping = threading.Event()

    # ------------------------------------------------------------ the run

    def start(self, servers: list[str]) -> None:
        now = time.monotonic()
        with self.lock:
            self.rows = {name: ["waiting", "", now, None] for name in servers}
            self.drawn = 0
            if self.live:
                self.stopping.clear()
                self._draw()
                self.ticker = threading.Thread(target=self._tick, daemon=True)
                self.ticker.start()

    def stop(self) -> None:
        if self.ticker is not None:
            self.stopping.set()
            self.ticker.join()
            self.ticker = None
        with self.lock:
            if self.live:
                self._draw()
            self.drawn = 0

    def __enter__(self) -> View:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def __call__(self, server: str, step: str, detail: str) -> None:
        with self.lock:
            row = self.rows.setdefault(server, ["", "", time.monotonic(), None])
            if step == "output":
                if self.verbosity > QUIET:
                    self.echo(f"{server}: {detail}")
                return
            row[0], row[1] = step, detail
            if step in ("done", "failed", "planned"):
                row[3] = time.monotonic()
            if step == "failed":
                self.echo(paint(f"error: {detail}", "red", self.colour), err=True)
            elif self.live:
                self._draw()
            elif self.verbosity > QUIET:
                elapsed = time.monotonic() - row[2]
                text = f"{detail} ({elapsed:.1f} s)" if step in ("planned", "done") else detail
                self._write(self.err, f"{time.strftime('%H:%M:%S')} {server}: {step}"
                            + (f" {text}" if text else "") + "\n")

    def echo(self, text: str, err: bool = False) -> None:
        """A line above the live lines (on stdout, or stderr with `err`)."""
        with self.lock:
            self._erase()
            self._write(self.err if err else self.out, text + "\n")
            if self.live and self.ticker is not None:
                self._draw()

    # ------------------------------------------------------------ drawing

    def _write(self, stream: TextIO, text: str) -> None:
        stream.write(text)
        stream.flush()

    def _line(self, name: str, row: list, width: int) -> str:
        step, detail, started, finished = row
        elapsed = (finished or time.monotonic()) - started
        detail = detail.splitlines()[0] if detail else ""
        text = f"{name:<{self._name_width()}} {step:<10} {elapsed:5.1f}s  {detail}"
        text = text[:max(width - 1, 20)]
        colour = {"done": "green", "failed": "red", "planned": "bold"}.get(step)
        return paint(text, colour, self.colour)

    def _name_width(self) -> int:
        return max((len(n) for n in self.rows), default=0)

    def _erase(self) -> None:
        if self.live and self.drawn:
            self.err.write(f"\x1b[{self.drawn}F\x1b[J")
            self.drawn = 0

    def _draw(self) -> None:
        width = shutil.get_terminal_size((100, 24)).columns
        self._erase()
        lines = [self._line(name, row, width) for name, row in self.rows.items()]
        self.err.write("".join(f"\r\x1b[2K{line}\n" for line in lines))
        self.err.flush()
        self.drawn = len(lines)

    def _tick(self) -> None:
        while not self.stopping.wait(0.5):
            with self.lock:
                if self.drawn:
                    self._draw()
