"""The plan as text for a terminal or a CI log: per server, per domain, one line a change.

Customer text is shown as it is in the plan (validated when it was read: no control
characters reach a plan); warnings go through ``mask_hashes``, so no hash is printed.
"""

from __future__ import annotations

import textwrap
from typing import Any, NamedTuple

from mailstate.model.passwords import mask_hashes
from mailstate.model.routing import shown_address
from mailstate.plan import Action, Change, Plan, ServerPlan, counted

SYMBOL = {Action.ADD: "+", Action.CHANGE: "~", Action.REMOVE: "-"}
WRAP = 100  # text lines of lists (welcome mails) are wrapped at this width


def by_domain(changes: list[Change]) -> list[tuple[str | None, list[Change]]]:
    """The changes grouped by domain, in the plan's order (None: the server's own settings)."""
    groups: dict[str | None, list[Change]] = {}
    for change in changes:
        groups.setdefault(change.domain, []).append(change)
    return list(groups.items())


def headline(change: Change) -> str:
    text = f"{change.kind} {change.name}"
    if change.note:
        text += f": {change.note}"
    return text


def show(value: Any) -> str:
    """A field's value for people: lists joined, booleans as yes/no, nothing as (none)."""
    if value is None or value == "" or value == []:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def plan_summary(plan: Plan) -> str:
    """The plan's last line: what it does in numbers, or that nothing differs."""
    if not plan.has_changes:
        return "No changes. The servers match the domain files."
    text = f"Plan: {plan.counts().text()}."
    if not any(s.changes for s in plan.servers):
        text += " (Only file layout differs; the state is the same.)"
    return text


def server_summary(plan: ServerPlan) -> str:
    """One server's changes in a progress line."""
    if not plan.has_changes:
        return "no changes"
    return plan.counts().text() if plan.changes else "only file layout differs"


class Line(NamedTuple):
    """One line of the text plan and what it says: an action's, a warning's, or plain
    (None), so that a terminal can colour it without reading the text back."""

    text: str
    tone: str | None = None  # "add" | "change" | "remove" | "warning" | None


def render_text(plan: Plan) -> str:
    return "\n".join(line.text for line in render_lines(plan)) + "\n"


def render_lines(plan: Plan) -> list[Line]:
    """The text plan, line by line, each with its tone."""
    lines: list[Line | str] = []
    for server in plan.servers:
        lines.append(f"Server {server.server} ({server.target})")
        lines += [Line(f"  ! {mask_hashes(w)}", "warning") for w in server.warnings]
        lines += [Line(f"  ! drift: {p} was edited by hand since the last apply", "warning")
                  for p in server.drift]
        for domain, changes in by_domain(server.changes):
            indent = "  "
            if domain:
                lines.append(f"  {domain}")
                indent = "    "
            for change in changes:
                lines.append(Line(f"{indent}{SYMBOL[change.action]} {headline(change)}",
                                  str(change.action)))
                lines += [f"{indent}    {f.field}: {show(f.old)} -> {show(f.new)}"
                          for f in change.fields if change.action == Action.CHANGE]
            routing = [r for r in server.routing if r.domain == domain]
            if routing:
                lines.append(f"{indent}where mail goes:")
                lines += [f"{indent}  {shown_address(r.address)}: {r.old} -> {r.new}"
                          for r in routing]
        if server.welcome:
            lines += textwrap.wrap(f"welcome mail to {len(server.welcome)}: "
                                   + ", ".join(server.welcome), WRAP,
                                   initial_indent="  ", subsequent_indent="    ",
                                   break_on_hyphens=False)
        if server.notices:
            lines.append("  new-domain notice to the account's contact: "
                         + counted(server.notices))
        if server.files:
            written = [f for f in server.files if f.action == "write"]
            removed = [f for f in server.files if f.action == "remove"]
            lines.append(f"  files: {len(written)} to write, {len(removed)} to remove; "
                         f"reload: {', '.join(server.reloads) or 'nothing'}")
        elif not server.changes:
            lines.append("  no changes")
        lines.append("")
    moves = sorted((d, s.server, where[3:]) for s in plan.servers
                   for d, where in s.moved.items() if where.startswith("to "))
    for domain, old, new in moves:
        lines.append(f"Move: {domain} from {old} to {new} (its mail stays on {old} until "
                     "it is moved; see docs/fleets.md, \"Moving a domain\")")
    lines += [""] if moves else []
    lines.append(plan_summary(plan))
    if plan.has_changes:
        checksum = plan.checksum()
        lines.append(f"Plan checksum: {checksum} (apply exactly this plan: "
                     f"`mailstate apply --checksum {checksum}`)")
    return [line if isinstance(line, Line) else Line(line) for line in lines]

