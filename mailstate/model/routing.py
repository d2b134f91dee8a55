"""Where mail to an address goes, in words: for the plan's routing lines and `explain`.

A reviewer reads a plan to learn what happens to mail, not which map line changed. This module
answers, from a server state alone (no server contact), "where does mail to this address go?":
a mailbox, a forward with or without a copy, an alias, a role alias, a domain alias, the
catch-all, or refused. It follows the same rules as ``render.alias_entries`` (which writes the
Postfix maps): a mailbox's primary address and its extra addresses deliver into it and forward
when it forwards; an alias pointing at a mailbox of the domain ends where that mailbox does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mailstate.model.state import Domain, Mailbox, ServerState
from mailstate.model.values import ROLE_ALIASES, format_duration

REFUSED = "refused"


def delivery(mb: Mailbox) -> str:
    """What becomes of mail that reaches a mailbox: kept, forwarded, or both."""
    parts = [f"mailbox {mb.login}"] if not mb.forward or mb.keep_copy else []
    return " + ".join(parts + list(mb.forward))


def _targets(domain: Domain, targets: tuple[str, ...]) -> str:
    """Alias targets, a mailbox address of the domain shown as where that mailbox delivers."""
    by_address = {mb.address: mb for mb in domain.mailboxes.values()}
    shown: list[str] = []
    for target in targets:
        mb = by_address.get(target)
        for part in (delivery(mb) if mb else target).split(" + "):
            if part not in shown:
                shown.append(part)
    return " + ".join(shown) or REFUSED


def routes(domain: Domain) -> dict[str, str]:
    """Every address of the domain (not its domain aliases) -> where its mail goes.

    The catch-all is the key ``@domain``. Addresses that are not keys are refused.
    """
    out: dict[str, str] = {}
    for mb in domain.mailboxes.values():
        out[mb.address] = delivery(mb) if mb.primary_enabled else f"{REFUSED} (primary " \
            "address off)"
        for extra in mb.addresses:
            out[extra] = delivery(mb)
    for address, targets in domain.aliases.items():
        out[address] = _targets(domain, targets)
    if domain.catch_all:
        out["@" + domain.name] = _targets(domain, domain.catch_all)
    return out


@dataclass
class RouteChange:
    """Mail to one address went `old` and will go `new` (``refused`` when nowhere)."""

    address: str
    domain: str
    old: str
    new: str


def route_changes(live: ServerState, desired: ServerState) -> list[RouteChange]:
    """Per-address routing changes of domains that exist before and after.

    A new or removed domain is told by its own changes; listing each of its addresses again
    would only make a first plan longer.
    """
    out: list[RouteChange] = []
    for name in sorted(set(live.domains) & set(desired.domains)):
        old_domain, new_domain = live.domains[name], desired.domains[name]
        if old_domain == new_domain:
            continue
        old, new = routes(old_domain), routes(new_domain)
        for address in sorted(set(old) | set(new), key=_address_order):
            before, after = old.get(address, REFUSED), new.get(address, REFUSED)
            if before != after:
                out.append(RouteChange(address, name, before, after))
    return out


def _address_order(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return domain, local


def shown_address(address: str) -> str:
    """The catch-all key ``@domain`` as a reader says it."""
    return f"any other address @{address[1:]}" if address.startswith("@") else address


# ---------------------------------------------------------------- explain


@dataclass
class Explanation:
    address: str
    server: str | None
    lines: list[str]
    found: bool


def _vacation_today(mb: Mailbox, today: dt.date) -> str:
    v = mb.vacation
    if v is None:
        return "no automatic reply"
    if (v.start and today < v.start) or (v.end and today > v.end):
        when = f"from {v.start}" if v.start and today < v.start else f"ended {v.end}"
        return f"an automatic reply is set but does not answer today ({when})"
    until = f" until {v.end}" if v.end else ""
    return (f"an automatic reply answers today{until} (subject: {v.subject!r}), at most once "
            f"per sender every {format_duration(v.interval)}")


def explain(address: str, servers: dict[str, ServerState],
            today: dt.date | None = None) -> Explanation:
    """Where mail to `address` goes on the server hosting its domain, in a few lines."""
    today = today or dt.date.today()
    local, _, name = address.lower().rpartition("@")
    for server, state in sorted(servers.items()):
        for domain in state.domains.values():
            if name == domain.name:
                return Explanation(address, server, _explain_in(local, domain, state, today),
                                   True)
            if name in domain.domain_aliases:
                lines = [f"{name} is a domain alias of {domain.name}: mail to {address} goes "
                         f"where {local}@{domain.name} goes"]
                lines += _explain_in(local, domain, state, today)
                return Explanation(address, server, lines, True)
    return Explanation(address, None, [f"{REFUSED}: no domain file hosts {name or address}"],
                       False)


def _explain_in(local: str, domain: Domain, state: ServerState, today: dt.date) -> list[str]:
    address = f"{local}@{domain.name}"
    lines: list[str] = []
    mailbox: Mailbox | None = None
    for mb in domain.mailboxes.values():
        if mb.address == address:
            mailbox = mb
            if not mb.primary_enabled:
                return [f"the primary address of mailbox {mb.login} ({mb.name}), which is "
                        f"off: mail to it is {REFUSED}"]
            lines.append(f"the primary address of mailbox {mb.login} ({mb.name})")
        elif address in mb.addresses:
            mailbox = mb
            lines.append(f"an extra address of mailbox {mb.login} ({mb.name})")
    if mailbox is not None:
        if mailbox.forward:
            copy = "a copy is kept in the mailbox" if mailbox.keep_copy else "no copy is kept"
            lines.append(f"forwarded to {', '.join(mailbox.forward)} ({copy})")
        lines.append(f"delivered to: {delivery(mailbox)}")
        lines.append(_vacation_today(mailbox, today))
    elif address in domain.aliases:
        kind = "a role alias" if local in ROLE_ALIASES else "an alias (no mailbox)"
        lines.append(f"{kind} for {', '.join(domain.aliases[address])}")
        lines.append(f"delivered to: {_targets(domain, domain.aliases[address])}")
    elif domain.catch_all:
        lines.append(f"no address of its own: the catch-all of {domain.name} takes it, for "
                     f"{', '.join(domain.catch_all)}")
        lines.append(f"delivered to: {_targets(domain, domain.catch_all)}")
    else:
        return [f"no such address at {domain.name} and no catch-all: mail to it is {REFUSED}"]
    lines.append(_greylisting(address, domain, state))
    return lines


def _greylisting(address: str, domain: Domain, state: ServerState) -> str:
    g = state.greylisting
    if not g.enabled:
        return "greylisting: off on this server"
    if not domain.greylisting:
        return f"greylisting: off for {domain.name}"
    if address in g.whitelist_recipients:
        return "greylisting: off for this address (server whitelist)"
    return (f"greylisting: on (mail from a sender not seen before is delayed "
            f"{format_duration(g.delay)})")
