"""The plan as a pull-request comment: summary first, one collapsed section per domain.

A forge limits a comment (GitHub: 65,536 characters), and the first plan of a provider's
repository can be megabytes. So the view is built against a budget: the summary (changes per
server), warnings and the checksum always come first; then each domain's section, in full while
it fits, else counted in one line; past the budget, sections are left out and the comment
says which, how many, and where the full plan is. No line is longer than a table row of one
change: lists are counted (the notes) or wrapped (welcome mails).

Everything from a domain file that is shown goes through ``escape_md`` (a code span: inert on
GitHub); warnings also through ``mask_hashes``.
"""

from __future__ import annotations

import html
import textwrap

from mailstate.model.passwords import mask_hashes
from mailstate.model.routing import shown_address
from mailstate.plan import Action, Change, Counts, Kind, Plan, ServerPlan
from mailstate.views.escape import escape_md
from mailstate.views.text import SYMBOL, by_domain, plan_summary, show

BUDGET = 65_000  # characters; GitHub's comment limit is 65,536
RESERVE = 3_000  # kept for the note on what was left out, and the closing lines
NOTES_SHOWN = 20  # warnings and drift lines shown before they are counted
SERVERS_SHOWN = 100  # rows of the summary table before the rest are counted
NAMES_SHOWN = 30  # domains named in the "left out" note
WRAP = 100
DEFAULT_FULL_PLAN = "run `mailstate plan` for the full text plan, or keep `--out plan.json`"


def _counts(changes: list[Change]) -> str:
    c = Counts.of(changes).as_dict()
    return ", ".join(f"{n} to {a}" for a, n in c.items() if n) or "no changes"


def _code(text: str) -> str:
    return f"`{text}`"


def _row(change: Change) -> str:
    if change.action == Action.CHANGE and change.fields:
        details = "<br>".join(f"{f.field}: {escape_md(show(f.old))} → "
                              f"{escape_md(show(f.new))}" for f in change.fields)
    else:
        details = escape_md(change.note)
    return (f"| {SYMBOL[change.action]} | {change.kind} "
            f"{escape_md(shown_address(change.name))} | {details} |")


def _wrapped(label: str, items: list[str]) -> list[str]:
    """A long list as short source lines (one paragraph when rendered)."""
    return textwrap.wrap(f"{label} ({len(items)}): {', '.join(items)}.", WRAP,
                         break_on_hyphens=False)


def _section(server: ServerPlan, domain: str | None, changes: list[Change],
             compact: bool) -> str:
    """One collapsed section: a domain's changes (or the server's own settings)."""
    title = (f"<code>{html.escape(domain)}</code> on {html.escape(server.server)}" if domain
             else f"server <code>{html.escape(server.server)}</code>: settings")
    out = [f"<details><summary>{title}: {_counts(changes)}</summary>", ""]
    welcomed = set(server.welcome)
    welcome = [c.name for c in changes if c.kind == Kind.MAILBOX and c.action == Action.ADD
               and c.name in welcomed]
    routing = [r for r in server.routing if r.domain == domain] if domain else []
    if compact:
        kinds: dict[str, int] = {}
        for change in changes:
            kinds[f"{change.kind} to {change.action}"] = \
                kinds.get(f"{change.kind} to {change.action}", 0) + 1
        out.append("Too long to show here: " + ", ".join(f"{n} × {k}" for k, n in
                                                        sorted(kinds.items())) + ".")
        if welcome:
            out += ["", f"Welcome mail to {len(welcome)} mailbox(es)."]
        if routing:
            out += ["", f"Where mail goes changes for {len(routing)} address(es)."]
    else:
        out += ["| | what | details |", "|---|---|---|"]
        out += [_row(c) for c in changes]
        if routing:
            out += ["", "Where mail goes:", ""]
            out += [f"- {escape_md(shown_address(r.address), False)}: "
                    f"{escape_md(r.old, False)} → {escape_md(r.new, False)}" for r in routing]
        if welcome:
            out += ["", *_wrapped("Welcome mail to", welcome)]
        if domain in server.notices:
            out += ["", "The account's contact gets the new-domain notice."]
    out += ["", "</details>", "", ""]  # a blank line ends the HTML block
    return "\n".join(out)


def render_markdown(plan: Plan, full_plan: str | None = None) -> str:
    """For a pull-request comment: under 65,000 characters whatever the plan's size."""
    where = full_plan or DEFAULT_FULL_PLAN
    head = [f"### mailstate plan: {plan.counts().text()}", ""]
    head += ["| server | target | add | change | remove | files | reload |",
             "|---|---|---|---|---|---|---|"]
    for s in plan.servers[:SERVERS_SHOWN]:
        n = s.counts()
        head.append(f"| {_code(s.server)} | {_code(s.target)} | {n.add} | {n.change} | "
                    f"{n.remove} | {len(s.files)} | {', '.join(s.reloads) or 'nothing'} |")
    if len(plan.servers) > SERVERS_SHOWN:
        rest = plan.servers[SERVERS_SHOWN:]
        head.append(f"| and {len(rest)} more | | {sum(len(s.changes) for s in rest)} changes "
                    "| | | | |")
    head.append("")
    moves = sorted((d, s.server, where[3:]) for s in plan.servers
                   for d, where in s.moved.items() if where.startswith("to "))
    head += [f"**Move:** `{d}` from `{old}` to `{new}` (its mail stays on `{old}` until it "
             "is moved)  " for d, old, new in moves[:NOTES_SHOWN]]
    if len(moves) > NOTES_SHOWN:
        head.append(f"and {len(moves) - NOTES_SHOWN} more moves (see the full plan)")
    head += [""] if moves else []
    if plan.has_changes:
        checksum = plan.checksum()
        head += [f"Checksum: `{checksum}` — a merge applies exactly this plan with "
                 f"`mailstate apply --checksum {checksum}`.", ""]
    # drift paths are layout paths (plain absolute paths, validated): safe in a code span
    notes = [f"{s.server}: drift: `{p}` was edited by hand since the last apply"
             for s in plan.servers for p in s.drift]
    notes += [f"{s.server}: {escape_md(mask_hashes(w), in_table=False)}" for s in plan.servers
              for w in s.warnings]
    head += [f"> :warning: {n}  " for n in notes[:NOTES_SHOWN]]
    if len(notes) > NOTES_SHOWN:
        head.append(f"> :warning: and {len(notes) - NOTES_SHOWN} more warnings (see the full "
                    "plan)")
    if notes:
        head.append("")
    text = "\n".join(head) + "\n"
    tail = plan_summary(plan) + "\n"

    left_out: list[tuple[str, int]] = []  # (section name, changes)
    shown_compact = 0
    body: list[str] = []
    used = len(text) + len(tail) + RESERVE
    sections = [(s, domain, changes) for s in plan.servers
                for domain, changes in by_domain(s.changes)]
    full = [_section(s, d, c, False) for s, d, c in sections]
    compact = [_section(s, d, c, True) for s, d, c in sections]
    # Sections in full while every later one still fits counted; then counted; then left out.
    after = [0] * (len(sections) + 1)
    for i in range(len(sections) - 1, -1, -1):
        after[i] = after[i + 1] + len(compact[i])
    for i, (s, domain, changes) in enumerate(sections):
        if used + len(full[i]) + after[i + 1] <= BUDGET:
            body.append(full[i])
            used += len(full[i])
        elif used + len(compact[i]) <= BUDGET:
            body.append(compact[i])
            used += len(compact[i])
            shown_compact += 1
        else:
            left_out.append((domain or f"server {s.server} settings", len(changes)))
    if not any(s.changes for s in plan.servers) and plan.has_changes:
        body.append("Only the file layout differs; the state is the same.\n")
    note = ""
    if left_out or shown_compact:
        parts = []
        if shown_compact:
            parts.append(f"{shown_compact} section(s) are counted instead of listed")
        if left_out:
            names = ", ".join(_code(n) for n, _ in left_out[:NAMES_SHOWN])
            more = f" and {len(left_out) - NAMES_SHOWN} more" if len(left_out) > NAMES_SHOWN \
                else ""
            parts.append(f"{len(left_out)} section(s) with {sum(n for _, n in left_out)} "
                         f"change(s) are left out: {names}{more}")
        note = (f"> **This plan is too long for one comment**: {'; '.join(parts)}. "
                f"The full plan: {where}.\n\n")
    return text + "".join(body) + note + tail
