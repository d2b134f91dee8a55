"""The terminal's colours come from what each plan line says, not from reading its text."""

from __future__ import annotations

import re

from mailstate.cli.progress import colour_plan
from mailstate.plan import Action, Change, Kind, Plan, ServerPlan
from mailstate.views.text import render_lines, render_text

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plan() -> Plan:
    changes = [Change(Action.ADD, Kind.MAILBOX, "new", "d.be"),
               Change(Action.CHANGE, Kind.MAILBOX, "old", "d.be"),
               Change(Action.REMOVE, Kind.ALIAS, "- not a symbol", "d.be",
                      note="+ nor this")]
    return Plan([ServerPlan("s", "local:x", changes, warnings=["careful"])])


def test_each_action_and_warning_has_its_colour_and_nothing_else_is_painted() -> None:
    coloured = colour_plan(render_lines(plan()), True).splitlines()
    by_text = {ANSI.sub("", line).strip(): line for line in coloured}
    assert by_text["+ mailbox new"].startswith("\x1b[32m")
    assert by_text["~ mailbox old"].startswith("\x1b[33m")
    assert by_text["- alias - not a symbol: + nor this"].startswith("\x1b[31m")
    assert by_text["! careful"].startswith("\x1b[33m")
    assert "\x1b" not in by_text["d.be"] and "\x1b" not in by_text["Server s (local:x)"]


def test_without_colour_the_lines_are_the_text_plan() -> None:
    assert colour_plan(render_lines(plan()), False) == render_text(plan())
    assert ANSI.sub("", colour_plan(render_lines(plan()), True)) == render_text(plan())
