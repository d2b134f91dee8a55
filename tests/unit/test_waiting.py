"""The tests' one way to wait (tests/waiting.py): for a condition, with a deadline."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.waiting import wait_until


def test_returns_the_first_value_that_meets_the_condition() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter), 5, "three probes", until=lambda n: n >= 3) == 3


def test_a_true_value_is_the_default_condition() -> None:
    values = iter(["", "", "ready"])
    assert wait_until(lambda: next(values), 5, "a non-empty answer") == "ready"


def test_the_failure_names_what_it_waited_for_and_the_last_value_seen() -> None:
    seen: list[str] = []

    def probe() -> str:
        seen.append(f"probe {len(seen)}")
        return seen[-1]

    with pytest.raises(AssertionError) as failed:
        wait_until(probe, 0.2, "the log line", until=lambda line: line == "never")
    assert len(seen) > 1
    assert str(failed.value) == (
        f"timed out after 0.2 s waiting for the log line; last observed: {seen[-1]}")


def test_the_probe_runs_once_more_after_the_deadline() -> None:
    started = time.monotonic()
    times: list[float] = []

    def probe() -> float:
        times.append(time.monotonic() - started)
        return times[-1]

    with pytest.raises(AssertionError):
        wait_until(probe, 0.3, "never", until=lambda _: False)
    assert times[-1] >= 0.3
    assert times[-1] < 0.3 + 0.5 + 0.2  # at most one pause after the deadline


def test_a_long_value_is_shown_by_its_end() -> None:
    log = "old line\n" * 1000 + "newest line\n"
    with pytest.raises(AssertionError) as failed:
        wait_until(lambda: log, 0, "a line that never comes", until=lambda text: "x" in text)
    shown = str(failed.value).partition("last observed: ")[2]
    assert shown.startswith("...") and shown.endswith("newest line\n") and len(shown) < 2100


def test_errors_of_the_probe_are_not_swallowed() -> None:
    def probe() -> str:
        raise FileNotFoundError("no such log")

    with pytest.raises(FileNotFoundError):
        wait_until(probe, 5, "a log")
