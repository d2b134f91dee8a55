"""The generations a server keeps, for people: when each was made and which files are live.

A generation is named by the apply that made it (``YYYYmmddTHHMMSSffffffZ``, UTC) and holds
the files as they were *before* that apply. The manifest names the apply that wrote the files
now live; after a rollback to a generation, that generation holds the live files.
"""

from __future__ import annotations

import datetime as dt

FORMAT = "%Y%m%dT%H%M%S%fZ"


def when(generation: str) -> str:
    try:
        stamp = dt.datetime.strptime(generation, FORMAT)
    except ValueError:
        return "(unknown date)"
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def describe(generations: list[str], live: str | None) -> list[str]:
    """One line per generation kept (oldest first), the live files said plainly."""
    if not generations:
        return ["no generations kept"]
    holding_live = next((g for g in sorted(generations) if live is not None and g > live), None)
    lines = [f"live: the files written by the apply of {when(live)}" if live else
             "live: files no apply recorded (the manifest is missing)"]
    for generation in sorted(generations):
        note = "the files before the apply of that time"
        if generation == holding_live:
            note += "; the same files as live now (rolled back)"
        elif generation == sorted(generations)[-1] and holding_live is None:
            note += "; what `rollback` puts back by default"
        lines.append(f"{generation}  {when(generation)}  {note}")
    return lines
