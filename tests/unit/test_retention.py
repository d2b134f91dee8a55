"""Which generations apply keeps: the newest of each of the last 7 days with an apply, the
newest of each of the 4 (ISO) weeks before those days, and always the two newest."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from mailstate.apply import generation_id
from mailstate.engine.retention import keep, prune


def gen(day: str, time: str = "120000", micro: int = 0) -> str:
    """A generation id as apply makes them: 20260331T120000000000Z."""
    return f"{day.replace('-', '')}T{time}{micro:06d}Z"


def days(start: str, count: int, step: int = 1) -> list[str]:
    first = dt.date.fromisoformat(start)
    return [(first + dt.timedelta(days=i * step)).isoformat() for i in range(count)]


def test_ids_are_what_apply_makes() -> None:
    now = dt.datetime(2026, 3, 31, 12, 0, 0, 123456, tzinfo=dt.UTC)
    assert generation_id(now) == "20260331T120000123456Z" == gen("2026-03-31", micro=123456)


@pytest.mark.parametrize("count", [0, 1, 2])
def test_few_generations_are_all_kept(count: int) -> None:
    gens = [gen(d) for d in days("2020-01-01", count, step=30)]
    assert keep(gens) == set(gens)
    assert prune(gens) == []


def test_many_applies_on_one_day_keep_the_two_newest() -> None:
    gens = [gen("2026-03-31", f"{h:02d}0000") for h in range(8, 18)]
    assert keep(gens) == {gen("2026-03-31", "170000"), gen("2026-03-31", "160000")}
    assert prune(gens) == sorted(gens)[:-2]


def test_same_second_ids_are_told_apart_by_their_microseconds() -> None:
    gens = [gen("2026-03-31", micro=m) for m in (1, 2, 3)]
    assert keep(gens) == {gen("2026-03-31", micro=3), gen("2026-03-31", micro=2)}


def test_one_apply_a_day_for_two_months() -> None:
    gens = [gen(d) for d in days("2026-02-01", 59)]  # 1 February to 31 March 2026
    kept = keep(gens)
    daily = [gen(d) for d in days("2026-03-25", 7)]  # the last 7 days with an apply
    # the newest of each ISO week before 25 March: weeks 13 (its Monday and Tuesday), 12, 11, 10
    weekly = [gen(d) for d in ("2026-03-24", "2026-03-22", "2026-03-15", "2026-03-08")]
    assert kept == {*daily, *weekly}
    assert prune(gens) == sorted(set(gens) - kept)


def test_days_without_an_apply_do_not_count() -> None:
    gens = [gen(d) for d in days("2026-01-01", 20, step=3)]  # every third day, to 27 February
    kept = sorted(keep(gens))
    assert kept[-7:] == [gen(d) for d in days("2026-02-09", 7, step=3)]  # 7 applies, 19 days
    # 4 weeks before 9 February: the newest of ISO weeks 3, 4, 5 and 6
    assert kept[:-7] == [gen(d) for d in ("2026-01-16", "2026-01-25", "2026-01-31",
                                          "2026-02-06")]


def test_several_applies_a_day_keep_the_newest_of_each_day_and_the_two_newest() -> None:
    gens = [gen(d, t) for d in days("2026-03-01", 31) for t in ("090000", "150000")]
    kept = keep(gens)
    newest_two = {gen("2026-03-31", "150000"), gen("2026-03-31", "090000")}
    daily = {gen(d, "150000") for d in days("2026-03-25", 7)}
    weekly = {gen(d, "150000") for d in ("2026-03-24", "2026-03-22", "2026-03-15",
                                         "2026-03-08")}
    assert kept == newest_two | daily | weekly


def test_weeks_are_iso_weeks_across_the_new_year() -> None:
    # 30 December 2024 (Monday) to 5 January 2025 (Sunday) is one ISO week, 2025-W01
    old = [gen("2024-12-23"), gen("2024-12-30"), gen("2025-01-02"), gen("2025-01-05")]
    recent = [gen(d) for d in days("2025-02-01", 7)]
    kept = keep(old + recent)
    assert kept == {*recent, gen("2025-01-05"), gen("2024-12-23")}


def test_only_four_weeks_are_kept_beyond_the_days() -> None:
    weekly = [gen(d) for d in days("2025-01-06", 20, step=7)]  # Mondays, 20 weeks
    recent = [gen(d) for d in days("2025-06-01", 7)]
    kept = keep(weekly + recent)
    assert kept == {*recent, *weekly[-4:]}


def test_ids_that_are_not_timestamps_are_never_pruned() -> None:
    gens = [gen("2026-03-31", f"{h:02d}0000") for h in range(8, 18)]
    foreign = ["before-migration", "2026-03", "x" * 15]
    kept = keep(gens + foreign)
    assert set(foreign) <= kept
    assert not set(foreign) & set(prune(gens + foreign))


def test_order_does_not_matter_and_keep_and_prune_split_the_list() -> None:
    gens = [gen(d, t) for d in days("2025-10-01", 120, step=2) for t in ("080000", "200000")]
    shuffled = gens[:]
    random.Random(7).shuffle(shuffled)
    assert keep(shuffled) == keep(gens)
    pruned = prune(shuffled)
    assert pruned == sorted(pruned)
    assert set(pruned) | keep(gens) == set(gens) and not set(pruned) & keep(gens)
    assert len(keep(gens)) == 7 + 4 + 1  # 7 days, 4 weeks, and the second newest of the day


def test_the_generation_being_made_counts() -> None:
    """apply passes the live generations plus its own: the oldest of today goes, not its own."""
    live = [gen("2026-03-31", "080000"), gen("2026-03-31", "090000")]
    new = gen("2026-03-31", "100000")
    assert prune([*live, new]) == [gen("2026-03-31", "080000")]
