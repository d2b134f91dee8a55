"""Which generations to keep: the manual's backup policy (§12), applied to mailstate's files.

Keep the newest generation of each of the last 7 days that had an apply, plus the newest of
each of the 4 weeks before them, plus always the two newest (the current files and the ones
they replaced). Generation ids are UTC timestamps, so they sort by time.
"""

from __future__ import annotations

import datetime as dt

DAILY = 7
WEEKLY = 4
ALWAYS = 2


def _when(gen: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(gen[:15], "%Y%m%dT%H%M%S")
    except ValueError:
        return None


def keep(generations: list[str]) -> set[str]:
    dated = sorted(((w, g) for g in generations if (w := _when(g))), reverse=True)
    kept = {g for _, g in dated[:ALWAYS]}
    days: dict[dt.date, str] = {}
    for when, gen in dated:
        days.setdefault(when.date(), gen)
    daily = list(days.items())[:DAILY]
    kept.update(g for _, g in daily)
    oldest_daily = daily[-1][0] if daily else None
    weeks: dict[tuple[int, int], str] = {}
    for when, gen in dated:
        if oldest_daily is None or when.date() < oldest_daily:
            weeks.setdefault(tuple(when.isocalendar())[:2], gen)  # type: ignore[arg-type]
    kept.update(list(weeks.values())[:WEEKLY])
    kept.update(g for g in generations if _when(g) is None)  # not ours to judge: keep
    return kept


def prune(generations: list[str]) -> list[str]:
    """The generations to delete."""
    kept = keep(generations)
    return sorted(g for g in generations if g not in kept)
