"""Virtualmin's owners and plans -> mailstate's accounts and plans (``mailstate.yaml``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mailstate.importer.virtualmin.files import number
from mailstate.model.values import MIB, check_address, format_size

if TYPE_CHECKING:
    from mailstate.importer.virtualmin.addresses import Box
    from mailstate.importer.virtualmin.convert import _Converter as Converter

_PLAN_NAME = re.compile(r"[^a-z0-9]+")


def quota(nbytes: int) -> int:
    return -(-nbytes // MIB) * MIB  # whole MiB, rounded up


def accounts(conv: Converter) -> tuple[dict[str, object], dict[str, object]]:
    """(plans, accounts) of mailstate.yaml: one account per Virtualmin owner, its plan
    Virtualmin's limits (never below what the account already has)."""
    plans: dict[str, dict[str, object]] = {}
    accounts: dict[str, object] = {}
    for account in sorted({d.account for d in conv.doms.values()}):
        mine = [d for d in conv.doms.values() if d.account == account]
        top = next((d for d in mine if d.top), mine[0])
        rec = top.record
        plan_rec = conv.vm.plans.get(rec.get("plan", ""), {})
        name = _PLAN_NAME.sub("-", plan_rec.get("name", "virtualmin").lower()).strip("-")
        boxes = [b for d in mine for b in d.boxes.values()]
        aliases = [a for a, (t, _c) in conv.alias_of.items() if t in {d.name for d in mine}]
        limits = _limits(conv, account, rec, len(boxes), len(mine), len(aliases), boxes)
        key = name or "virtualmin"
        if key in plans and plans[key] != limits:
            key = f"{key}-{account}"
        plans[key] = limits
        # The operator's assignment of domains (who owns what lives in mailstate.yaml):
        # every domain and alias domain Virtualmin gave this account, and nothing else.
        owned = sorted({d.name for d in mine} | set(aliases))
        entry: dict[str, object] = {"plan": key, "domains": owned}
        contact = rec.get("emailto") or rec.get("email")
        if contact:
            try:
                entry["contact"] = check_address(contact)
            except ValueError:
                conv.warn(top.name, f"the contact address {contact!r} is not carried")
        accounts[account] = entry
    return plans, accounts


def _limits(conv: Converter, account: str, rec: dict[str, str], boxes: int, domains: int,
            aliases: int, mailboxes: list[Box]) -> dict[str, object]:
    def limit(key: str, used: int, what: str) -> int | None:
        value = number(rec.get(key, ""))
        if rec.get(key, "").strip() and value is None:
            conv.warn(None, f"account {account}: {key}={rec[key]!r} is not a number; the "
                      "plan has no such limit")
        if not value:
            return None
        if value < used:
            conv.warn(None, f"account {account}: Virtualmin's limit of {value} {what} is "
                      f"below the {used} it has; the plan allows {used}")
        return max(value, used)
    quota_total = sum(quota(conv.vm.quotas.get(b.user.uid, 0)) or 3 * 1024**3
                      for b in mailboxes)
    blocks = number(rec.get("quota", ""))
    if rec.get("quota", "").strip() and blocks is None:
        conv.warn(None, f"account {account}: quota={rec['quota']!r} is not a number; the plan "
                  "has no mail quota")
    mail_quota = web_quota = None
    if blocks:
        web_quota = quota(blocks * 1024)
        mail_quota = max(web_quota, quota_total)
        if mail_quota > web_quota:
            conv.warn(None, f"account {account}: the mailbox quotas add up to more than "
                      "Virtualmin's disk quota; the plan's mail quota is their sum")
    return {"mailboxes": limit("mailboxlimit", boxes, "mailboxes"),
            "mail_quota": format_size(mail_quota) if mail_quota else None,
            "domains": limit("domslimit", domains, "domains"),
            "web_quota": format_size(web_quota) if web_quota else None,
            "domain_aliases": limit("aliasdomslimit", aliases, "domain aliases")}
