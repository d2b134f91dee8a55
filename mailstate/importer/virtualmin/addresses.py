"""Virtualmin's addresses (``/etc/postfix/virtual`` and ``/etc/aliases``) -> a domain file's
mailboxes' forwards, vacations and extra addresses, aliases, role aliases and catch-all.

A destination is followed as Postfix follows it: a bare name goes to ``local(8)``, which uses
the ``/etc/aliases`` entry of that name (keyed as postalias keys it: ``jean\\@autre.be`` and
``"jean@autre.be"`` alike) before the Unix user's mailbox; ``\\name`` and
``\\jean\\@autre.be`` are the mailbox itself; any other value with an '@', escaped or quoted
too, is an address that Postfix looks up again. So a forward is found under the key Postfix
reads (``jean.autre``, or Virtualmin's ``jean-autre.be``), never under one it does not. An
extra address delivers where the mailbox's own address does, forward included, exactly as
the mailbox's ``addresses:`` do in mailstate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailstate.importer.output import Converted
from mailstate.importer.virtualmin import autoreply
from mailstate.importer.virtualmin.files import AUTOREPLY, UnixUser, VirtualminFiles, unescape
from mailstate.model.values import ROLE_ALIASES, check_address, format_duration

Token = tuple[str, str]  # (user | address | domain | autoreply | other, value)


@dataclass
class Box:
    user: UnixUser
    login: str
    domain: str
    own: str  # the address Virtualmin gives the user (its "email")
    data: dict[str, object]


@dataclass
class Dom:
    record: dict[str, str]
    name: str
    account: str
    top: bool
    boxes: dict[str, Box] = field(default_factory=dict)  # by Unix user name
    entries: dict[str, tuple[int, list[str]]] = field(default_factory=dict)  # local -> dests


class Addresses:
    """The address half of the converter (mixed into ``convert._Converter``)."""

    vm: VirtualminFiles
    out: Converted
    doms: dict[str, Dom]
    alias_of: dict[str, tuple[str, bool]]
    users: dict[str, Box]
    via_user: list[tuple[str, str, Box, set[str]]]

    def warn(self, domain: str | None, text: str) -> None:
        self.out.warn(domain, text)

    def _owner(self, dom: Dom) -> str:
        top = dom.record
        for _ in range(8):
            parent = self.vm.domains.get(top.get("parent", ""))
            if parent is None:
                break
            top = parent
        return top.get("user", "")

    def expand(self, dest: str, depth: int = 0) -> list[Token]:
        """A destination as Postfix delivers it: (kind, value) tokens."""
        if dest.startswith("|"):
            m = AUTOREPLY.match(dest)
            return [("autoreply", m[1])] if m else [("other", dest)]
        if dest.startswith(("/", "./", ":include:")) or dest.upper().startswith(
                ("BOUNCE", "ERROR:")):
            return [("other", dest)]
        if dest.startswith("\\"):  # the mailbox itself, no alias lookup
            name = unescape(dest[1:])
            return [("user", name)] if name in self.vm.users else [("other", dest)]
        if dest.startswith("@"):
            return [("domain", dest[1:].lower())]
        if "@" in dest:
            # `jean\@autre.be` and `"jean@autre.be"` are the address jean@autre.be again, in
            # the virtual table and in /etc/aliases alike (Postfix looks it up again: proven
            # on a test host); only `\name` is a mailbox
            return [("address", unescape(dest))]
        name = unescape(dest)  # local(8): /etc/aliases first, then the Unix user
        if name in self.vm.aliases and depth < 5:
            out = [t for v in self.vm.aliases[name] for t in self.expand(v, depth + 1)]
            return list(dict.fromkeys(out))
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
            if local:
                try:
                    check_address(f"{local}@{domain}")
                except ValueError as exc:
                    self.warn(dom.name, f"/etc/postfix/virtual:{number}: {key} not imported "
                              f"(mailstate cannot write this address; it now refuses mail): "
                              f"{exc}")
                    continue
            if any(unescape(d) == key for d in dests):
                self.warn(dom.name, f"/etc/postfix/virtual:{number}: {key} names itself, so "
                          "Postfix refuses its mail (User unknown in virtual alias table); "
                          "not imported")
                continue
            dom.entries.setdefault(local, (number, dests))

    def _alias_line(self, alias: str, dom: Dom, local: str, dests: list[str],
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

    def targets(self, dom: Dom, tokens: list[Token], where: str,
                skip_user: str | None = None) -> tuple[list[str], list[str], bool]:
        """(addresses, autoreply files, whether skip_user's mailbox keeps a copy)."""
        out, replies, copy, boxes = [], [], False, []
        for kind, value in tokens:
            if kind == "user" and value == skip_user:
                copy = True
            elif kind == "user" and value in self.users:
                out.append(self.users[value].own)
                boxes.append(self.users[value])
            elif kind == "address":
                try:
                    out.append(check_address(value))
                except ValueError as exc:
                    self.warn(dom.name, f"{where}: target {value} not carried: {exc}")
            elif kind == "autoreply":
                replies.append(value)
            elif kind == "user":
                self.warn(dom.name, f"{where}: not carried: the mailbox of Unix user {value} "
                          "was not imported (see above)")
            else:
                self.warn(dom.name, f"{where}: target {value} not carried (mailstate delivers "
                          "into mailboxes and to addresses only)")
        for box in boxes:
            self.via_user.append((dom.name, where, box, set(out)))
        return sorted(set(out)), replies, copy

    def _delivery(self, dom: Dom) -> dict[str, tuple[list[str], list[Token]]]:
        """Unix user -> (the destinations of its own address's line, where they deliver)."""
        out = {}
        for name, box in dom.boxes.items():
            local = box.own.rpartition("@")[0]
            dests = dom.entries[local][1] if local in dom.entries else [f"\\{name}"]
            out[name] = (dests, [t for d in dests for t in self.expand(d)])
        return out

    def _extra_of(self, dom: Dom, dests: list[str], tokens: list[Token],
                  delivery: dict[str, tuple[list[str], list[Token]]]) -> str | None:
        """The Unix user whose mailbox this address is an extra address of: the same line as
        its own address, that address itself, or the same delivery through its mailbox."""
        for name, (own_dests, own_tokens) in delivery.items():
            if (dests == own_dests or tokens == [("address", dom.boxes[name].own)]
                    or (("user", name) in tokens and set(tokens) == set(own_tokens))):
                return name
        return None

    def addresses(self, dom: Dom) -> dict[str, object]:
        """The domain file's mapping (without the header comments)."""
        boxes = {b.own: b for b in dom.boxes.values()}
        aliases: dict[str, list[str]] = {}
        roles: dict[str, list[str]] = {}
        catch_all: list[str] = []
        extra: dict[str, list[str]] = {}
        mailbox_only: dict[str, list[str]] = {}  # extra addresses that skipped a forward
        seen_own: set[str] = set()
        delivery = self._delivery(dom)
        for name, box in dom.boxes.items():
            where = f"mailbox {name}"
            local = box.own.rpartition("@")[0]
            if local in dom.entries:
                seen_own.add(box.own)
                where = f"/etc/postfix/virtual:{dom.entries[local][0]}: {box.own}"
            tokens = delivery[name][1]
            if tokens == [("user", name)]:
                continue
            to, replies, copy = self.targets(dom, tokens, where, name)
            if to:
                box.data["forward"] = {"to": to, "keep_copy": copy}
            if replies:
                self.vacation(dom, box, replies, where)
            if not to and not copy:
                self.warn(dom.name, f"{where}: delivers nowhere mailstate can express; "
                          "the mailbox keeps its mail")
        for local, (number, dests) in sorted(dom.entries.items()):
            address = f"{local}@{dom.name}" if local else f"@{dom.name}"
            if address in boxes:
                continue
            where = f"/etc/postfix/virtual:{number}: {address}"
            tokens = [t for d in dests for t in self.expand(d)]
            users = [v for k, v in tokens if k == "user"]
            if local and local not in ROLE_ALIASES:
                owner = self._extra_of(dom, dests, tokens, delivery)
                if owner is not None:
                    extra.setdefault(owner, []).append(local)
                    continue
                if len(tokens) == 1 and users and users[0] in dom.boxes:
                    extra.setdefault(users[0], []).append(local)
                    mailbox_only.setdefault(users[0], []).append(local)
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
            skipped = sorted(set(mailbox_only.get(box.user.name, [])))
            if skipped and ("forward" in box.data or "vacation" in box.data):
                self.warn(dom.name, f"mailbox {box.user.name}: on Virtualmin its forward "
                          f"and autoreply were on {box.own} only; in mailstate they also "
                          f"apply to {', '.join(skipped)}")
            box.data["welcome"] = False
            mailboxes[box.login] = box.data
        data["mailboxes"] = mailboxes
        if aliases:
            data["aliases"] = aliases
        return data

    def vacation(self, dom: Dom, box: Box, files: list[str], where: str) -> None:
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
        if made.vacation is None:
            return
        if "interval" in made.vacation:
            made.vacation["interval"] = format_duration(int(made.vacation["interval"]))
        sender = str(made.vacation.get("from", ""))
        own = {dom.name, *(a for a, (t, _c) in self.alias_of.items() if t == dom.name)}
        if sender and sender.rpartition("@")[2] not in own:
            del made.vacation["from"]
            self.warn(dom.name, f"{path}: From: {sender} is not carried (a reply is sent only "
                      f"as an address of {dom.name}); the reply comes from {box.own}")
        box.data["vacation"] = made.vacation

    def said_via_user(self) -> None:
        """An alias that named a mailbox delivered into it only, on Virtualmin; in mailstate
        it goes to the mailbox's address, whose forward and vacation apply: say so where that
        changes where mail goes."""
        for domain, where, box, beside in self.via_user:
            forward = box.data.get("forward")
            changed = "vacation" in box.data
            if isinstance(forward, dict):
                changed = changed or not forward["keep_copy"] or not set(forward["to"]) <= beside
            if changed:
                self.warn(domain, f"{where}: on Virtualmin this went into {box.user.name}'s "
                          f"mailbox only; in mailstate it goes to {box.own}, whose forward "
                          "applies too")
