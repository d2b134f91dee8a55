"""A live server -> domain files: how an existing server comes under mailstate.

The server's files are read and parsed exactly as ``plan`` does, then every domain is written
as a YAML file in the manual's words. Defaults are left out (a 3G quota, role aliases pointing
at the administrator), so the files look like what a person would write. The test of an import
is that planning the written files against the same server shows no changes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mailstate.importer.yaml_writer import dump
from mailstate.model.state import Domain, Mailbox, ServerState
from mailstate.model.values import GIB, ROLE_ALIASES, format_duration, format_size
from mailstate.schema import BUILTIN_PLANS

DEFAULT_QUOTA = 3 * GIB
DEFAULT_INTERVAL = 600
_ACCOUNT = re.compile(r"(.+?)\d{4}")


def _local(address: str, domain: str) -> str:
    """'info@monsite.be' -> 'info' when at the domain itself, else the full address."""
    local, _, at = address.rpartition("@")
    return local if at == domain else address


def admin_of(domain: Domain) -> str | None:
    """The mailbox the role aliases point at (postmaster@ first), if it is one of this domain."""
    for role in ("postmaster", *ROLE_ALIASES):
        targets = domain.aliases.get(f"{role}@{domain.name}", ())
        if len(targets) == 1 and targets[0].endswith(f"@{domain.name}"):
            login = targets[0].rpartition("@")[0]
            if login in domain.mailboxes:
                return login
    return None


def account_of(domain: Domain) -> str:
    """The customer: the administrator's login, or the prefix of <account>NNNN logins."""
    admin = admin_of(domain)
    if admin:
        m = _ACCOUNT.fullmatch(admin)
        return m[1] if m else admin
    for login in sorted(domain.mailboxes):
        if m := _ACCOUNT.fullmatch(login):
            return m[1]
    label = re.sub(r"[^a-z0-9]", "", domain.name.split(".")[0]) or "account"
    return label[:64]


def _mailbox(box: Mailbox) -> dict[str, Any]:
    data: dict[str, Any] = {"name": box.name, "password": box.password}
    if box.quota != DEFAULT_QUOTA:
        data["quota"] = format_size(box.quota) if box.quota else "0M"
    if not box.primary_enabled:
        data["primary_address"] = False
    if box.addresses:
        data["addresses"] = [_local(a, box.domain) for a in box.addresses]
    if box.forward:
        data["forward"] = {"to": list(box.forward), "keep_copy": box.keep_copy}
    if box.vacation:
        v = box.vacation
        vacation: dict[str, Any] = {"subject": v.subject, "message": v.message}
        if v.sender:
            vacation["from"] = v.sender
        if v.interval != DEFAULT_INTERVAL:
            vacation["interval"] = format_duration(v.interval)
        if v.start:
            vacation["start"] = v.start
        if v.end:
            vacation["end"] = v.end
        data["vacation"] = vacation
    return data


def domain_file(domain: Domain, server: str, account: str,
                plan: str | None) -> dict[str, Any]:
    """One domain as the dictionary a person would write (defaults left out)."""
    admin = admin_of(domain)
    data: dict[str, Any] = {"domain": domain.name, "account": account}
    if plan:  # only for files used without a mailstate.yaml, which holds accounts' plans
        data["plan"] = plan
    data["server"] = server
    if admin and admin != account:
        data["admin"] = admin
    if domain.domain_aliases:
        data["domain_aliases"] = list(domain.domain_aliases)
    if not domain.greylisting:
        data["greylisting"] = False
    if domain.catch_all:
        data["catch_all"] = [_local(a, domain.name) for a in domain.catch_all]
    roles: dict[str, list[str]] = {}
    aliases: dict[str, list[str]] = {}
    automatic = (f"{admin}@{domain.name}",) if admin else None
    for address, targets in sorted(domain.aliases.items()):
        local = address.rpartition("@")[0]
        if local in ROLE_ALIASES:
            if targets != automatic:
                roles[local] = [_local(t, domain.name) for t in targets]
        else:
            aliases[local] = [_local(t, domain.name) for t in targets]
    if roles:
        data["role_aliases"] = roles
    data["mailboxes"] = {login: _mailbox(box) for login, box in sorted(domain.mailboxes.items())}
    if aliases:
        data["aliases"] = aliases
    return data


def smallest_plan(boxes: int, quota: int, domains: int) -> str:
    for name, plan in BUILTIN_PLANS.items():
        if ((plan.mailboxes is None or boxes <= plan.mailboxes)
                and (plan.mail_quota is None or quota <= plan.mail_quota)
                and (plan.domains is None or domains <= plan.domains)):
            return name
    return "extended"


def import_state(state: ServerState, server: str, out: Path, account: str | None = None,
                 with_plan: bool = True) -> dict[Path, str]:
    """Write one domain file per domain of the server into `out`; returns path -> account.

    With `with_plan`, each file names the smallest built-in plan its account fits in (for
    files used on their own); in a repository the plan belongs in mailstate.yaml instead.
    """
    owners = {name: account or account_of(d) for name, d in state.domains.items()}
    out.mkdir(parents=True, exist_ok=True)
    written: dict[Path, str] = {}
    for name, domain in sorted(state.domains.items()):
        mine = [d for n, d in state.domains.items() if owners[n] == owners[name]]
        boxes = [b for d in mine for b in d.mailboxes.values()]
        plan = smallest_plan(len(boxes), sum(b.quota for b in boxes), len(mine))
        text = dump(domain_file(domain, server, owners[name], plan if with_plan else None))
        path = out / f"{name}.yaml"
        path.write_text(f"# Imported by `mailstate import` from server {server}.\n{text}")
        written[path] = owners[name]
    return written
