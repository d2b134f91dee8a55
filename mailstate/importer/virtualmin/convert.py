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

from mailstate.importer.output import Converted
from mailstate.importer.virtualmin.accounts import accounts, quota
from mailstate.importer.virtualmin.addresses import Addresses, Box, Dom
from mailstate.importer.virtualmin.files import (
    UnixUser,
    VirtualminFiles,
    read,
)
from mailstate.importer.virtualmin.greylisting import greylisting
from mailstate.model.passwords import WEAK_SCHEMES, from_shadow
from mailstate.model.values import (
    check_domain,
    check_login,
    check_name,
    format_size,
)
from mailstate.server.transport import Transport


def _some(names: list[str], total: int) -> str:
    """'a, b' or, for all of many, 'all 100 mailboxes'."""
    if len(names) == total and total > 3:
        return f"all {total} mailboxes"
    return ", ".join(names)


class _Converter(Addresses):
    def __init__(self, vm: VirtualminFiles, server: str, target: str | None) -> None:
        self.vm, self.server, self.target = vm, server, target
        self.out = Converted(config={}, domains={})
        self.doms: dict[str, Dom] = {}  # by domain name
        self.by_id: dict[str, Dom] = {}
        self.alias_of: dict[str, tuple[str, bool]] = {}  # alias domain -> (domain, copy mode)
        self.users: dict[str, Box] = {}  # Unix name -> mailbox
        self.logins: dict[str, str] = {}  # login -> Unix name
        self.homes: dict[str, dict[str, object]] = {}
        self.no_quota: dict[str, list[str]] = {}  # domain -> users without a disk quota
        self.no_maildir: dict[str, list[str]] = {}  # domain -> users without a Maildir yet
        self.weak: dict[str, list[str]] = {}  # domain -> users with an MD5-CRYPT password
        # aliases that named a Unix user's mailbox: (domain, where, box, what else it had)
        self.via_user: list[tuple[str, str, Box, set[str]]] = []
        self.disabled: set[str] = set()  # ids of domain records whose mail is disabled

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
            disabled = [f.strip() for f in rec.get("disabled", "").split(",") if f.strip()]
            if "mail" in disabled:
                self.warn(None, f"{name}: not imported: its mail is disabled in Virtualmin "
                          f"(disabled={rec['disabled']}), and mailstate would turn it back on; "
                          "its addresses keep refusing mail. Once the provider enables it, "
                          "write its domain file by hand (or import again)")
                self.disabled.add(rid)
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
            dom = Dom(rec, name, account, top is rec)
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
                why = " (its mail is disabled)" if rec["alias"] in self.disabled else ""
                self.warn(name, f"not imported: an alias of a domain that is not imported{why}")
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

    def _own_local(self, dom: Dom, name: str, owner: bool) -> str:
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

    def mailbox(self, dom: Dom, user: UnixUser, owner: bool) -> None:
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
        hashed = self.vm.shadow.get(user.name, "")
        if hashed.startswith(("!", "*")):
            self.warn(dom.name, f"{where} not imported: it is disabled in Virtualmin (its "
                      "password in /etc/shadow is locked); mailstate has no disabled mailbox, "
                      "so its addresses now refuse mail instead of filling a mailbox nobody "
                      "can open. Its Maildir stays where it is")
            return
        password = from_shadow(hashed)
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
        size = self.vm.quotas.get(user.uid)
        if size:
            data["quota"] = format_size(quota(size))
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
        box = Box(user, login, dom.name, own, data)
        dom.boxes[user.name], self.users[user.name] = box, box
        self.logins[login] = user.name
        self.homes[login] = {"domain": dom.name, "home": user.home, "uid": user.uid,
                             "gid": user.gid}

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
        self.said_via_user()
        plans, owners = accounts(self)
        server: dict[str, object] = {}
        if self.target:
            server["target"] = self.target
        server["layout"] = {"homes": dict(sorted(self.homes.items()))}
        server["greylisting"] = grey
        self.out.config = {"servers": {self.server: server}, "plans": plans,
                           "accounts": owners}
        return self.out


def convert(vm: VirtualminFiles, server: str, target: str | None = None) -> Converted:
    """Virtualmin's records -> mailstate.yaml and domain files, with warnings."""
    return _Converter(vm, server, target).run()


def import_server(transport: Transport, server: str, target: str | None) -> Converted:
    """Read a Virtualmin server in one round trip and convert it."""
    return convert(read(transport), server, target)
