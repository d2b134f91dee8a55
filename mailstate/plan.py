"""A change plan: what apply would change, as data, and the diff that computes it.

Changes are computed between two ``ServerState``s (desired vs. live, parsed from the server's
files), object by object, with DeepDiff finding the fields that differ inside an object. So a
plan speaks of mailboxes, addresses and forwards, never of lines, and a reordered file is no
change. Beside the changes a plan carries what apply needs to check it is still valid: the
files to write, the daemons to reload, and fingerprints of the live and desired states.
Password hashes are never part of a plan. Its views (text, markdown, JSON) are in
``mailstate.views``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mailstate.model.routing import RouteChange
from mailstate.model.state import Domain, Greylisting, Mailbox, ServerState
from mailstate.model.values import format_duration, format_size

SECRET_FIELDS = {"password"}
LIST_SHOWN = 10  # a list in a note longer than this is cut and counted


class Action(StrEnum):
    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"


class Kind(StrEnum):
    """What a change is about, in the words the plan shows."""

    DOMAIN = "domain"
    DOMAIN_ALIAS = "domain alias"
    MAILBOX = "mailbox"
    ALIAS = "alias"
    CATCH_ALL = "catch-all"
    GREYLISTING = "greylisting"
    GREYLISTING_SETTINGS = "greylisting settings"
    QUOTA_WARNINGS = "quota warnings"
    POSTFIX_SETTING = "postfix setting"
    DAEMON = "daemon"
    UNFINISHED_APPLY = "unfinished apply"


@dataclass(frozen=True)
class Counts:
    """Changes by action: computed here once for every view and progress line."""

    add: int = 0
    change: int = 0
    remove: int = 0

    @classmethod
    def of(cls, changes: list[Change]) -> Counts:
        n = {Action.ADD: 0, Action.CHANGE: 0, Action.REMOVE: 0}
        for c in changes:
            n[c.action] += 1
        return cls(n[Action.ADD], n[Action.CHANGE], n[Action.REMOVE])

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.add + other.add, self.change + other.change,
                      self.remove + other.remove)

    def as_dict(self) -> dict[str, int]:
        return {"add": self.add, "change": self.change, "remove": self.remove}

    def text(self) -> str:
        return f"{self.add} to add, {self.change} to change, {self.remove} to remove"


@dataclass
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass
class Change:
    action: Action
    kind: Kind
    name: str
    domain: str | None = None
    fields: list[FieldChange] = field(default_factory=list)
    note: str = ""

    def __post_init__(self) -> None:  # a saved plan's strings become the types (or fail)
        self.action = Action(self.action)
        self.kind = Kind(self.kind)


@dataclass
class FileAction:
    path: str
    action: str  # write | remove
    service: str
    reason: str  # new | changed | adopt (existed, not written by mailstate before)


@dataclass
class ServerPlan:
    server: str
    target: str
    changes: list[Change] = field(default_factory=list)
    files: list[FileAction] = field(default_factory=list)
    reloads: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)  # managed files edited by hand
    warnings: list[str] = field(default_factory=list)
    welcome: list[str] = field(default_factory=list)  # logins that get a welcome mail
    notices: list[str] = field(default_factory=list)  # new domains whose contact is told
    routing: list[RouteChange] = field(default_factory=list)  # per address, where it changes
    live_fingerprint: str = ""
    desired_fingerprint: str = ""
    live_objects: int = 0  # mailboxes and addresses on the server before the plan
    moved: dict[str, str] = field(default_factory=dict)  # domain -> "to B" / "from A"

    @property
    def has_changes(self) -> bool:
        return bool(self.changes or self.files)

    def counts(self) -> Counts:
        return Counts.of(self.changes)


@dataclass
class Plan:
    servers: list[ServerPlan]

    def counts(self) -> Counts:
        total = Counts()
        for server in self.servers:
            total += Counts.of(server.changes)
        return total

    @property
    def has_changes(self) -> bool:
        return any(s.has_changes for s in self.servers)

    def checksum(self) -> str:
        """What a reviewer approved, as one token: ``ms1:<files>:<plan>``.

        ``<plan>`` (128 bits of SHA-256) covers every change, file action, reload, welcome
        mail and routing line, and the fingerprints of the live files the plan was made
        from and of the files it would write. ``<files>`` covers only the latter (what the
        domain files render to), so a mismatch can say whether the domain files or the
        servers changed. Warnings are left out: a mailbox's size is not part of the plan.
        The target is left out too: a merge pipeline may reach the same server another way.
        """
        servers = sorted(self.servers, key=lambda s: s.server)
        content = [[s.server, s.live_fingerprint, s.desired_fingerprint, s.reloads, s.drift,
                    s.welcome, s.notices, sorted(s.moved.items()),
                    [(c.action, c.kind, c.name, c.domain, c.note,
                      [(f.field, f.old, f.new) for f in c.fields]) for c in s.changes],
                    [(f.path, f.action, f.service, f.reason) for f in s.files],
                    [(r.address, r.domain, r.old, r.new) for r in s.routing]]
                   for s in servers]
        plan = hashlib.sha256(json.dumps(content, default=str).encode())
        files = hashlib.sha256("".join(f"{s.server}={s.desired_fingerprint}\n"
                                       for s in servers).encode())
        return f"ms1:{files.hexdigest()[:8]}:{plan.hexdigest()[:32]}"


# ---------------------------------------------------------------- computing changes


def _view(mailbox: Mailbox) -> dict[str, Any]:
    """A mailbox as the plan shows it: readable units, no hash."""
    data = mailbox.model_dump(mode="json", exclude={"login", "domain"})
    data["primary_address"] = data.pop("primary_enabled")  # the domain file's word
    data["quota"] = format_size(mailbox.quota)
    if mailbox.vacation:
        data["vacation"]["interval"] = format_duration(mailbox.vacation.interval)
    return data


def _greylisting_view(greylisting: Greylisting) -> dict[str, Any]:
    """Server-wide postgrey settings as the plan shows them: JSON values, readable units."""
    data = greylisting.model_dump(mode="json")
    data["delay"] = format_duration(greylisting.delay)
    data["max_age"] = f"{greylisting.max_age}d"
    return data


def _field_changes(old: dict[str, Any], new: dict[str, Any]) -> list[FieldChange]:
    from deepdiff import DeepDiff  # imported here: it pulls in numpy, and most plans need none

    diff = DeepDiff(old, new, ignore_order=True, view="tree")
    names: set[str] = set()
    for report in diff.values():
        for level in report:
            path = level.path(output_format="list")
            names.add(".".join(map(str, path[:2])) if path[:1] == ["vacation"] and
                      len(path) > 1 and old.get("vacation") and new.get("vacation")
                      else str(path[0]))
    changes = []
    for name in sorted(names):
        top, _, sub = name.partition(".")
        before = old.get(top) if not sub else (old.get(top) or {}).get(sub)
        after = new.get(top) if not sub else (new.get(top) or {}).get(sub)
        if top in SECRET_FIELDS:
            before, after = "(hash)", "(new hash)"
        elif top == "vacation" and not sub:
            before, after = ("on" if before else "off"), ("on" if after else "off")
        elif sub == "message":
            before, after = "(old text)", "(new text)"
        changes.append(FieldChange(name, before, after))
    return changes


def counted(items: list[str] | tuple[str, ...], shown: int = LIST_SHOWN) -> str:
    """A list for people: the first few, and how many more (the JSON fields hold them all)."""
    if len(items) <= shown:
        return ", ".join(items)
    return f"{', '.join(items[:shown])} and {len(items) - shown} more"


def _mailbox_note(m: Mailbox) -> str:
    parts = [m.name, format_size(m.quota)]
    if m.addresses:
        parts.append("addresses " + counted(m.addresses))
    if not m.primary_enabled:
        parts.append("primary address off")
    if m.forward:
        copy = "keeping a copy" if m.keep_copy else "no copy"
        parts.append(f"forward to {counted(m.forward)} ({copy})")
    if m.vacation:
        parts.append(f"vacation every {format_duration(m.vacation.interval)}")
    return "; ".join(parts)


def _object_fields(view: dict[str, Any], added: bool) -> list[FieldChange]:
    """An added (or removed) object's fields as data: old None for an add, new None for a
    remove. The hash is never shown, only that there is one."""
    out = []
    for key in sorted(view):
        value = "(hash)" if key in SECRET_FIELDS else view[key]
        out.append(FieldChange(key, None, value) if added else FieldChange(key, value, None))
    return out


def _domain_fields(domain: Domain, added: bool) -> list[FieldChange]:
    view = {"greylisting": domain.greylisting, "domain_aliases": list(domain.domain_aliases),
            "mailboxes": len(domain.mailboxes), "aliases": len(domain.aliases)}
    return _object_fields(view, added)


def _domain_changes(name: str, old: Domain | None, new: Domain | None) -> list[Change]:
    empty = Domain(name=name)
    before, after = old or empty, new or empty
    out: list[Change] = []
    if old is None:
        out.append(Change(Action.ADD, Kind.DOMAIN, name, name, _domain_fields(after, True)))
    elif new is None:
        out.append(Change(Action.REMOVE, Kind.DOMAIN, name, name, _domain_fields(before, False),
                          note="mail to it is refused; mailboxes are disabled, mail kept"))
    for alias in sorted(set(after.domain_aliases) - set(before.domain_aliases)):
        out.append(Change(Action.ADD, Kind.DOMAIN_ALIAS, alias, name,
                          [FieldChange("of", None, name)], note=f"receives {name}'s mail"))
    for alias in sorted(set(before.domain_aliases) - set(after.domain_aliases)):
        out.append(Change(Action.REMOVE, Kind.DOMAIN_ALIAS, alias, name,
                          [FieldChange("of", name, None)]))
    if old and new and before.greylisting != after.greylisting:
        out.append(Change(Action.CHANGE, Kind.GREYLISTING, name, name,
                          [FieldChange("greylisting", before.greylisting, after.greylisting)]))
    if before.catch_all != after.catch_all:
        action = (Action.ADD if not before.catch_all else Action.REMOVE if not after.catch_all
                  else Action.CHANGE)
        out.append(Change(action, Kind.CATCH_ALL, f"@{name}", name,
                          [FieldChange("to", list(before.catch_all) or None,
                                       list(after.catch_all) or None)],
                          note=", ".join(after.catch_all)))
    for login in sorted(set(before.mailboxes) | set(after.mailboxes)):
        a, b = before.mailboxes.get(login), after.mailboxes.get(login)
        if a == b:
            continue
        if a is None:
            out.append(Change(Action.ADD, Kind.MAILBOX, login, name,
                              _object_fields(_view(b), True),  # type: ignore[arg-type]
                              note=_mailbox_note(b)))  # type: ignore[arg-type]
        elif b is None:
            out.append(Change(Action.REMOVE, Kind.MAILBOX, login, name,
                              _object_fields(_view(a), False),
                              note="disabled: mail to it is refused, its mail stays on disk"))
        else:
            out.append(Change(Action.CHANGE, Kind.MAILBOX, login, name,
                              _field_changes(_view(a), _view(b))))
    for address in sorted(set(before.aliases) | set(after.aliases)):
        a_t, b_t = before.aliases.get(address), after.aliases.get(address)
        if a_t == b_t:
            continue
        if a_t is None:
            out.append(Change(Action.ADD, Kind.ALIAS, address, name, [FieldChange("to", None,
                              list(b_t or ()))], note="-> " + counted(b_t or ())))
        elif b_t is None:
            out.append(Change(Action.REMOVE, Kind.ALIAS, address, name,
                              [FieldChange("to", list(a_t), None)]))
        else:
            out.append(Change(Action.CHANGE, Kind.ALIAS, address, name,
                              [FieldChange("to", list(a_t), list(b_t))]))
    return out


def diff_states(live: ServerState, desired: ServerState) -> list[Change]:
    """Object-level changes from live to desired. Equal objects are skipped cheaply."""
    changes: list[Change] = []
    if live.greylisting != desired.greylisting:
        old, new = _greylisting_view(live.greylisting), _greylisting_view(desired.greylisting)
        changes.append(Change(Action.CHANGE, Kind.GREYLISTING_SETTINGS, "postgrey", None,
                              [FieldChange(k, old[k], new[k]) for k in old if old[k] != new[k]]))
    if live.quota_warnings != desired.quota_warnings:
        a, b = live.quota_warnings, desired.quota_warnings
        fields = [FieldChange("thresholds", [f"{t}%" for t in sorted(a.thresholds)],
                              [f"{t}%" for t in sorted(b.thresholds)])]
        fields += [FieldChange(k, getattr(a, k), getattr(b, k)) for k in ("subject", "message")
                   if b.thresholds and getattr(a, k) != getattr(b, k)]
        changes.append(Change(Action.CHANGE, Kind.QUOTA_WARNINGS, "dovecot", None,
                              [f for f in fields if f.old != f.new]))
    for name in sorted(set(live.domains) | set(desired.domains)):
        old, new = live.domains.get(name), desired.domains.get(name)
        if old != new:
            changes += _domain_changes(name, old, new)
    return changes
