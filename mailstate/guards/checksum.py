"""Apply exactly what was reviewed: compare a fresh plan with the checksum reviewers saw.

A pull request shows a plan and its checksum (``Plan.checksum``); the merge pipeline runs
``apply --checksum SUM``, which makes a fresh plan and applies it only if its checksum is
SUM. Otherwise nothing is applied and the refusal says what differs: the domain files (the
merged commit is not the one planned) or the servers (changed since the plan was made), and,
when the reviewed plan's JSON is given too, which lines of the plan differ.
"""

from __future__ import annotations

import difflib
import re

from mailstate.guards.safety import ApplyRefused
from mailstate.plan import Plan, ServerPlan
from mailstate.views.text import render_text

CHECKSUM = re.compile(r"ms1:[0-9a-f]{8}:[0-9a-f]{32}")
SHOWN = 40  # differing lines shown before they are counted


def _lines(plan: Plan) -> list[str]:
    return [line for line in render_text(plan).splitlines()
            if not line.startswith(("Plan checksum:", "Server "))]


def differences(reviewed: Plan, fresh: Plan) -> list[str]:
    """The lines of the text plan that differ, as `- reviewed` / `+ fresh`."""
    out = [line for line in difflib.unified_diff(_lines(reviewed), _lines(fresh), lineterm="",
                                                 n=0)
           if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    if len(out) > SHOWN:
        out = [*out[:SHOWN], f"... and {len(out) - SHOWN} more differing lines"]
    return out


def check_checksum(expected: str, fresh: Plan, reviewed: Plan | None = None) -> None:
    """Return when the fresh plan is the reviewed one; raise ApplyRefused saying why not."""
    expected = expected.strip()
    if not CHECKSUM.fullmatch(expected):
        raise ApplyRefused(f"{expected!r} is not a plan checksum (ms1:XXXXXXXX:XXXX..., as "
                           "`mailstate plan` prints it); nothing was changed")
    actual = fresh.checksum()
    if actual == expected:
        return
    why = (f"the fresh plan's checksum is {actual}, not the reviewed {expected}: ")
    if actual.split(":")[1] != expected.split(":")[1]:
        why += ("the domain files (or mailstate.yaml) are not the ones that plan was made "
                "from, so this is not what was reviewed")
    else:
        why += ("the domain files are the same, but the servers changed since the plan was "
                "made (another apply, a rollback or a hand edit)")
        if not fresh.has_changes:
            why += "; the fresh plan has no changes: was it applied already?"
    if reviewed is not None:
        lines = differences(reviewed, fresh)
        if lines:
            why += "\nWhat differs (- reviewed, + fresh):\n" + "\n".join(lines)
    raise ApplyRefused(why + "\nNothing was changed; plan again and review the new plan.")


def check_saved(old: ServerPlan | None, server: ServerPlan) -> None:
    """Refuse a saved plan that no longer describes this server or its domain files."""
    if old is None:
        raise ApplyRefused(f"the saved plan does not cover server {server.server!r}")
    if old.live_fingerprint != server.live_fingerprint:
        raise ApplyRefused(f"the saved plan is stale: server {server.server!r} changed "
                           "since it was made; run plan again")
    if old.desired_fingerprint != server.desired_fingerprint:
        raise ApplyRefused(f"the saved plan is stale: the domain files for "
                           f"{server.server!r} changed since it was made; run plan again")
