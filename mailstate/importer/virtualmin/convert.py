"""A Virtualmin server -> a mailstate repository (``mailstate.yaml`` + one file per domain).

Virtualmin's records (``virtualmin_files.py``) are turned into what a person would write:
mailboxes with their real names, quotas and password hashes (kept as crypt hashes Dovecot
verifies), extra addresses, forwards with or without a copy, autoreplies as vacations, aliases,
role aliases, catch-alls, domain aliases (copy-mode duplicates folded back into their domain)
and greylisting opt-outs. Logins stay as they were, and every mailbox keeps its Maildir where
Virtualmin put it: the operator's ``mailstate.yaml`` gets a ``layout.homes`` entry per mailbox
(home, uid, gid), so Dovecot opens the same files as the same Unix user.

What cannot be carried is a warning (and a comment in the file it concerns), never dropped in
silence. Converted mailboxes have ``welcome: false``: their users must notice nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailstate.importer.output import Converted
from mailstate.importer.virtualmin import autoreply
from mailstate.importer.virtualmin.files import AUTOREPLY, UnixUser, VirtualminFiles, read
from mailstate.importer.virtualmin.greylisting import greylisting
from mailstate.model.passwords import WEAK_SCHEMES, from_shadow
from mailstate.model.values import (
    MIB,
    ROLE_ALIASES,
    check_address,
    check_domain,
    check_login,
    check_name,
    format_duration,
    format_size,
)
from mailstate.server.transport import Transport

_PLAN_NAME = re.compile(r"[^a-z0-9]+")


@dataclass
class _Box:
    user: UnixUser
    login: str
    domain: str
    own: str  # the address Virtualmin gives the user (its "email")
    data: dict[str, object]


@dataclass
class _Dom:
    record: dict[str, str]
    name: str
    account: str
    top: bool
    boxes: dict[str, _Box] = field(default_factory=dict)  # by Unix user name
    entries: dict[str, tuple[int, list[str]]] = field(default_factory=dict)  # local -> dests


def _some(names: list[str], total: int) -> str:
    """'a, b' or, for all of many, 'all 100 mailboxes'."""
    if len(names) == total and total > 3:
        return f"all {total} mailboxes"
    return ", ".join(names)


def _quota(nbytes: int) -> int:
    return -(-nbytes // MIB) * MIB  # whole MiB, rounded up


class _Converter:
    def __init__(self, vm: VirtualminFiles, server: str, target: str | None) -> None:
        self.vm, self.server, self.target = vm, server, target
        self.out = Converted(config={}, domains={})
        self.doms: dict[str, _Dom] = {}  # by domain name
        self.by_id: dict[str, _Dom] = {}
        self.alias_of: dict[str, tuple[str, bool]] = {}  # alias domain -> (domain, copy mode)
        self.users: dict[str, _Box] = {}  # Unix name -> mailbox
        self.logins: dict[str, str] = {}  # login -> Unix name
        self.homes: dict[str, dict[str, object]] = {}
        self.no_quota: dict[str, list[str]] = {}  # domain -> users without a disk quota
        self.no_maildir: dict[str, list[str]] = {}  # domain -> users without a Maildir yet
        self.weak: dict[str, list[str]] = {}  # domain -> users with an MD5-CRYPT password
        self.via_user: list[tuple[str, str, _Box]] = []  # aliases that named a Unix user

    def warn(self, domain: str | None, text: str) -> None:
        self.out.warn(domain, text)

    # -- domains, accounts --------------------------------------------------------------
    def domains(self) -> None:
        records = self.vm.domains
        path = "/etc/webmin/virtual-server/domains/"
        for rid, rec in records.items():
            try:
                name = check_domain(rec.get("dom", ""))
            except ValueError as exc:
                self.warn(None, f"{path}{rid}: not imported: {exc}")
                continue
            if rec.get("mail") != "1":
                self.warn(None, f"{name}: not imported: the domain has no mail in Virtualmin")
                continue
            if rec.get("alias"):
                continue
            top = rec
            for _ in range(8):
                parent = records.get(top.get("parent", ""))
                if parent is None:
                    break
                top = parent
            owner = top.get("user", "")
            try:
                account = check_login(owner)
            except ValueError:
                account = re.sub(r"[^a-z0-9]", "", owner.lower())[:64] or f"account{rid}"
                self.warn(name, f"the owner {owner!r} is not a valid account name; the "
                          f"account is called {account!r}")
            dom = _Dom(rec, name, account, top is rec)
            self.doms[name], self.by_id[rid] = dom, dom
        for rec in records.values():
            if rec.get("mail") != "1" or not rec.get("alias"):
                continue
            target = self.by_id.get(rec["alias"])
            try:
                name = check_domain(rec.get("dom", ""))
            except ValueError:
                continue
            if target is None:
                self.warn(name, "not imported: an alias of a domain that is not imported")
                continue
            if rec.get("aliasmail") == "1":
                self.warn(name, "an alias domain with mail of its own: imported as an alias "
                          f"of {target.name}; its own mailboxes are not imported")
            self.alias_of[name] = (target.name, rec.get("aliascopy") == "1")

    # -- mailboxes ----------------------------------------------------------------------
    def mailboxes(self) -> None:
        by_gid: dict[str, list[UnixUser]] = {}  # the domain's group is the users' primary one
        for user in sorted(self.vm.users.values(), key=lambda u: u.name):
            by_gid.setdefault(str(user.gid), []).append(user)
        for dom in self.doms.values():
            rec = dom.record
            gid, home = rec.get("gid", ""), rec.get("home", "")
            owner_user = self.vm.users.get(rec.get("user", "")) if dom.top else None
            members = by_gid.get(gid, [])
            if owner_user is not None and owner_user not in members:
                members = sorted([owner_user, *members], key=lambda u: u.name)
            for user in members:
                owner = user is owner_user
                if owner or (home and user.home.startswith(home + "/homes/")):
                    self.mailbox(dom, user, owner)
            if dom.name in self.no_quota:
                self.warn(dom.name, f"no disk quota in Virtualmin for "
                          f"{_some(self.no_quota[dom.name], len(dom.boxes))}: mailstate's "
                          "default quota (3G, or `defaults.quota` in mailstate.yaml) applies")
            if dom.name in self.weak:
                self.warn(dom.name, f"MD5-CRYPT (weak) password hashes for "
                          f"{_some(self.weak[dom.name], len(dom.boxes))}: they keep working "
                          "(on Dovecot 2.4 mailstate allows weak schemes while any is left); "
                          "give them new passwords with `mailstate passwd FILE LOGIN`")
            if dom.name in self.no_maildir:
                self.warn(dom.name, f"no Maildir yet for "
                          f"{_some(self.no_maildir[dom.name], len(dom.boxes))} (Dovecot makes "
                          "it at the first delivery)")

    def _own_local(self, dom: _Dom, name: str, owner: bool) -> str:
        """Virtualmin's address of a user: the name without the domain's prefix or @domain."""
        if owner:
            return name
        if name.endswith("@" + dom.name):
            return name[: -len(dom.name) - 1]
        prefix = dom.record.get("prefix", "")
        for sep in ".-_":
            if prefix and name.endswith(sep + prefix):
                return name[: -len(prefix) - 1]
            if prefix and name.startswith(prefix + sep):
                return name[len(prefix) + 1:]
        return name

    def mailbox(self, dom: _Dom, user: UnixUser, owner: bool) -> None:
        where = f"mailbox {user.name}"
        login = user.name
        if "@" in login:
            local, _, at = login.partition("@")
            login = local if at == dom.name else login
        try:
            check_login(login)
        except ValueError as exc:
            self.warn(dom.name, f"{where} not imported: {exc}")
            return
        if login in self.logins:
            self.warn(dom.name, f"{where} not imported: its login {login!r} (Dovecot strips "
                      f"@domain) is already the login of {self.logins[login]}; logins are "
                      "unique per server")
            return
        password = from_shadow(self.vm.shadow.get(user.name, ""))
        if password is None:
            self.warn(dom.name, f"{where} not imported: its password in /etc/shadow is locked, "
                      "empty or in a scheme Dovecot cannot check; give it a hash from "
                      "`mailstate hash-password` and add it by hand")
            return
        if user.uid < 1000 or user.gid < 1000:
            self.warn(dom.name, f"{where} not imported: uid/gid below 1000 (a system account)")
            return
        real = user.gecos.split(",")[0].strip()
        try:
            real = check_name(real)
        except ValueError:
            real = login
        data: dict[str, object] = {"name": real, "password": password}
        if password.startswith(WEAK_SCHEMES):
            self.weak.setdefault(dom.name, []).append(user.name)
        quota = self.vm.quotas.get(user.uid)
        if quota:
            data["quota"] = format_size(_quota(quota))
        else:
            self.no_quota.setdefault(dom.name, []).append(user.name)
        if user.home not in self.vm.maildirs:
            self.no_maildir.setdefault(dom.name, []).append(user.name)
        for f in (".procmailrc", ".forward"):
            if f"{user.home}/{f}" in self.vm.files:
                self.warn(dom.name, f"{where}: {user.home}/{f} is not carried (mailstate "
                          "delivers with Dovecot LMTP; rewrite its rules as a forward or "
                          "vacation)")
        own = f"{self._own_local(dom, user.name, owner)}@{dom.name}"
        box = _Box(user, login, dom.name, own, data)
        dom.boxes[user.name], self.users[user.name] = box, box
        self.logins[login] = user.name
        self.homes[login] = {"domain": dom.name, "home": user.home, "uid": user.uid,
                             "gid": user.gid}

    # -- addresses ----------------------------------------------------------------------
    def expand(self, dest: str, depth: int = 0) -> list[tuple[str, str]]:
        """A destination as (kind, value): user, address, domain, autoreply, other."""
        if dest.startswith("\\"):
            return [("user", dest[1:].replace("\\@", "@"))]
        if dest.startswith("|"):
            m = AUTOREPLY.match(dest)
            return [("autoreply", m[1])] if m else [("other", dest)]
        if dest.startswith(("/", "./", ":include:")) or dest.upper().startswith(
                ("BOUNCE", "ERROR:")):
            return [("other", dest)]
        if "\\@" in dest:
            return [("user", dest.replace("\\@", "@"))]
        if dest.startswith("@"):
            return [("domain", dest[1:].lower())]
        if "@" in dest:
            return [("address", dest.lower())]
        name = dest.lower()
        if name in self.vm.aliases and depth < 5:
            return [t for v in self.vm.aliases[name] for t in self.expand(v, depth + 1)]
        if name in self.vm.users:
            return [("user", name)]
        return [("other", dest)]

    def collect(self) -> None:
        for number, key, dests in self.vm.virtual:
            local, at, domain = key.rpartition("@")
            if not at:
                continue  # `dom dom`: marks a Virtualmin mail domain
            dom = self.doms.get(domain)
            if dom is None and domain in self.alias_of:
                dom = self.doms[self.alias_of[domain][0]]
                self._alias_line(domain, dom, local, dests, number)
                continue
            if dom is None:
                continue
            dom.entries.setdefault(local, (number, dests))

    def _alias_line(self, alias: str, dom: _Dom, local: str, dests: list[str],
                    number: int) -> None:
        copy = self.alias_of[alias][1]
        if not copy and local == "" and dests == [f"@{dom.name}"]:
            return  # catch-all mode: `@alias @domain`
        same = dom_entry = None
        for entry_local, (_n, entry_dests) in dom.entries.items():
            if entry_local == local:
                dom_entry = entry_dests
        if dom_entry is not None:
            same = [d.replace(f"@{alias}", f"@{dom.name}") for d in dests] == dom_entry
        if copy and same:
            return  # copy mode: the same line as the domain's, folded back
        shown = f"{local}@{alias}" if local else f"@{alias}"
        how = "differs from" if dom_entry is not None else "has no counterpart in"
        self.warn(dom.name, f"/etc/postfix/virtual:{number}: {shown} -> {', '.join(dests)} "
                  f"{how} {dom.name}'s lines; as a domain alias, {alias} now receives exactly "
                  f"what {dom.name} receives")

    def targets(self, dom: _Dom, tokens: list[tuple[str, str]], where: str,
                skip_user: str | None = None) -> tuple[list[str], list[str], bool]:
        """(addresses, autoreply files, whether skip_user's mailbox keeps a copy)."""
        out, replies, copy = [], [], False
        for kind, value in tokens:
            if kind == "user" and value == skip_user:
                copy = True
            elif kind == "user" and value in self.users:
                out.append(self.users[value].own)
                self.via_user.append((dom.name, where, self.users[value]))
            elif kind == "address":
                try:
                    out.append(check_address(value))
                except ValueError as exc:
                    self.warn(dom.name, f"{where}: target {value} not carried: {exc}")
            elif kind == "autoreply":
                replies.append(value)
            else:
                self.warn(dom.name, f"{where}: target {value} not carried (mailstate delivers "
                          "into mailboxes and to addresses only)")
        return sorted(set(out)), replies, copy

    def addresses(self, dom: _Dom) -> dict[str, object]:
        """The domain file's mapping (without the header comments)."""
        boxes = {b.own: b for b in dom.boxes.values()}
        aliases: dict[str, list[str]] = {}
        roles: dict[str, list[str]] = {}
        catch_all: list[str] = []
        extra: dict[str, list[str]] = {}
        seen_own: set[str] = set()
        for local, (number, dests) in sorted(dom.entries.items()):
            address = f"{local}@{dom.name}" if local else f"@{dom.name}"
            where = f"/etc/postfix/virtual:{number}: {address}"
            tokens = [t for d in dests for t in self.expand(d)]
            box = boxes.get(address)
            users = [v for k, v in tokens if k == "user"]
            if box is not None:
                seen_own.add(address)
                if tokens == [("user", box.user.name)]:
                    continue
                to, replies, copy = self.targets(dom, tokens, where, box.user.name)
                if to:
                    box.data["forward"] = {"to": to, "keep_copy": copy}
                if replies:
                    self.vacation(dom, box, replies, where)
                if not to and not copy:
                    self.warn(dom.name, f"{where}: delivers nowhere mailstate can express; "
                              "the mailbox keeps its mail")
                continue
            if (len(tokens) == 1 and users and users[0] in dom.boxes and local
                    and local not in ROLE_ALIASES):
                extra.setdefault(users[0], []).append(local)
                continue
            before = len(self.out.warnings)
            to, replies, _ = self.targets(dom, tokens, where)
            if replies:
                self.warn(dom.name, f"{where}: the autoreply of an alias is not carried "
                          "(mailstate's vacations belong to mailboxes)")
            if not to:
                if len(self.out.warnings) == before:
                    self.warn(dom.name, f"{where}: no target mailstate can carry; not imported")
                continue
            short = [t.removesuffix(f"@{dom.name}") if t.endswith(f"@{dom.name}") else t
                     for t in to]
            if not local:
                catch_all = short
            elif local in ROLE_ALIASES:
                roles[local] = short
            else:
                aliases[local] = short
        data: dict[str, object] = {}
        if catch_all:
            data["catch_all"] = catch_all
        admin = self.users.get(self._owner(dom))
        made = []
        for role in ROLE_ALIASES:
            if role not in roles and catch_all:
                roles[role] = list(catch_all)  # as on Virtualmin: the catch-all received it
            elif role not in roles and f"{role}@{dom.name}" not in boxes and admin:
                made.append(f"{role}@")
        if made:
            self.warn(dom.name, f"{', '.join(made)} did not exist in Virtualmin; mailstate "
                      f"makes {'it' if len(made) == 1 else 'them'}, for {admin.own}")
        if admin and roles:
            roles = {r: t for r, t in roles.items() if t != [admin.own.removesuffix(
                f"@{dom.name}")] and t != [admin.own]}
        if roles:
            data["role_aliases"] = roles
        mailboxes: dict[str, object] = {}
        for box in sorted(dom.boxes.values(), key=lambda b: b.login):
            own = box.own.rpartition("@")[0]
            locals_ = sorted(set(extra.get(box.user.name, [])))
            if box.own in seen_own and box.own != f"{box.login}@{dom.name}":
                locals_ = sorted({own, *locals_})
            if box.own != f"{box.login}@{dom.name}" or box.own not in seen_own:
                box.data["primary_address"] = False
            if locals_:
                box.data["addresses"] = locals_
                if ("forward" in box.data or "vacation" in box.data) and extra.get(
                        box.user.name):
                    self.warn(dom.name, f"mailbox {box.user.name}: on Virtualmin its forward "
                              f"and autoreply were on {box.own} only; in mailstate they also "
                              f"apply to {', '.join(sorted(set(extra[box.user.name])))}")
            box.data["welcome"] = False
            mailboxes[box.login] = box.data
        data["mailboxes"] = mailboxes
        if aliases:
            data["aliases"] = aliases
        return data

    def _owner(self, dom: _Dom) -> str:
        top = dom.record
        for _ in range(8):
            parent = self.vm.domains.get(top.get("parent", ""))
            if parent is None:
                break
            top = parent
        return top.get("user", "")

    def vacation(self, dom: _Dom, box: _Box, files: list[str], where: str) -> None:
        if len(files) > 1:
            self.warn(dom.name, f"{where}: only the first of {len(files)} autoreplies is carried")
        path = files[0]
        if path not in self.vm.files:
            self.warn(dom.name, f"{where}: the autoreply file {path} could not be read; "
                      "the autoreply is not carried")
            return
        made = autoreply.convert(self.vm.text(path), path)
        for w in made.warnings:
            self.warn(dom.name, w)
        if made.vacation is not None:
            if "interval" in made.vacation:
                made.vacation["interval"] = format_duration(int(made.vacation["interval"]))
            box.data["vacation"] = made.vacation

    # -- plans and accounts -------------------------------------------------------------
    def accounts(self) -> tuple[dict[str, object], dict[str, object]]:
        plans: dict[str, dict[str, object]] = {}
        accounts: dict[str, object] = {}
        for account in sorted({d.account for d in self.doms.values()}):
            mine = [d for d in self.doms.values() if d.account == account]
            top = next((d for d in mine if d.top), mine[0])
            rec = top.record
            plan_rec = self.vm.plans.get(rec.get("plan", ""), {})
            name = _PLAN_NAME.sub("-", plan_rec.get("name", "virtualmin").lower()).strip("-")
            boxes = [b for d in mine for b in d.boxes.values()]
            aliases = [a for a, (t, _c) in self.alias_of.items() if t in {d.name for d in mine}]
            limits = self._limits(account, rec, len(boxes), len(mine), len(aliases), boxes)
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
                    self.warn(top.name, f"the contact address {contact!r} is not carried")
            accounts[account] = entry
        return plans, accounts

    def _limits(self, account: str, rec: dict[str, str], boxes: int, domains: int,
                aliases: int, mailboxes: list[_Box]) -> dict[str, object]:
        def limit(key: str, used: int, what: str) -> int | None:
            value = rec.get(key, "")
            if not value.isdigit() or value == "0":
                return None
            if int(value) < used:
                self.warn(None, f"account {account}: Virtualmin's limit of {value} {what} is "
                          f"below the {used} it has; the plan allows {used}")
            return max(int(value), used)
        quota_total = sum(_quota(self.vm.quotas.get(b.user.uid, 0)) or 3 * 1024**3
                          for b in mailboxes)
        blocks = rec.get("quota", "")
        mail_quota = None
        if blocks.isdigit() and blocks != "0":
            mail_quota = max(_quota(int(blocks) * 1024), quota_total)
            if mail_quota > _quota(int(blocks) * 1024):
                self.warn(None, f"account {account}: the mailbox quotas add up to more than "
                          "Virtualmin's disk quota; the plan's mail quota is their sum")
        return {"mailboxes": limit("mailboxlimit", boxes, "mailboxes"),
                "mail_quota": format_size(mail_quota) if mail_quota else None,
                "domains": limit("domslimit", domains, "domains"),
                "web_quota": format_size(_quota(int(blocks) * 1024)) if mail_quota else None,
                "domain_aliases": limit("aliasdomslimit", aliases, "domain aliases")}

    # -- all ----------------------------------------------------------------------------
    def run(self) -> Converted:
        self.domains()
        self.mailboxes()
        self.collect()
        grey, off = greylisting(self.vm, set(self.doms), self.alias_of, self.warn)
        for name, dom in sorted(self.doms.items()):
            data: dict[str, object] = {"domain": name, "account": dom.account,
                                       "server": self.server}
            owner = self.users.get(self._owner(dom))
            if owner and (owner.login != dom.account or owner.domain != name):
                data["admin"] = owner.login
            aliases = sorted(a for a, (t, _c) in self.alias_of.items() if t == name)
            if aliases:
                data["domain_aliases"] = aliases
            if name in off:
                data["greylisting"] = False
            data.update(self.addresses(dom))
            self.out.domains[name] = data
        for domain, where, box in self.via_user:
            if "forward" in box.data:
                self.warn(domain, f"{where}: on Virtualmin this went into {box.user.name}'s "
                          f"mailbox only; in mailstate it goes to {box.own}, whose forward "
                          "applies too")
        plans, accounts = self.accounts()
        server: dict[str, object] = {}
        if self.target:
            server["target"] = self.target
        server["layout"] = {"homes": dict(sorted(self.homes.items()))}
        server["greylisting"] = grey
        self.out.config = {"servers": {self.server: server}, "plans": plans,
                           "accounts": accounts}
        return self.out


def convert(vm: VirtualminFiles, server: str, target: str | None = None) -> Converted:
    """Virtualmin's records -> mailstate.yaml and domain files, with warnings."""
    return _Converter(vm, server, target).run()


def import_server(transport: Transport, server: str, target: str | None) -> Converted:
    """Read a Virtualmin server in one round trip and convert it."""
    return convert(read(transport), server, target)
