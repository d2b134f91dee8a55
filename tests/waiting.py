"""Waiting in tests: for a condition, with a deadline, never for a fixed time.

A daemon writes its log line, a delivered message, a pid file or a listening socket a moment
after the event that caused it. A test that reads such a thing right away races the daemon; one
that sleeps a fixed time is slow on a quiet machine and still loses on a busy one. `wait_until`
polls instead, and fails with what it waited for and what it saw last.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_SHOWN = 2000  # characters of the last observed value in the failure message


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    if len(text) > _SHOWN:
        text = f"...{text[-_SHOWN:]}"  # the end: a log's newest lines are what one wants
    return text


def wait_until(
    probe: Callable[[], T],
    timeout: float,
    what: str,
    *,
    until: Callable[[T], Any] = bool,
    interval: float = 0.05,
    max_interval: float = 0.5,
) -> T:
    """Call `probe` until `until(value)` is true (by default: until the value is true) and
    return that value.

    The probe runs at least once after the deadline, so a condition that became true just in
    time is seen. After `timeout` seconds it raises AssertionError naming `what` it waited for
    and the last value the probe returned. Exceptions of the probe propagate: a probe that may
    fail while its condition is not met yet must handle that itself. The pause between probes
    grows from `interval` to at most `max_interval` (keep that short when the condition only
    lasts a moment, e.g. a pause that the test must act in).
    """
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        value = probe()
        if until(value):
            return value
        left = deadline - time.monotonic()
        if left < 0:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what}; last observed: {_shown(value)}"
            )
        time.sleep(min(delay, max(left, 0.001)))
        delay = min(delay * 1.5, max_interval)
