"""Where a Virtualmin server delivers each address, computed from its files as Postfix does.

Independent of the conversion (``convert.py``): it follows ``/etc/postfix/virtual`` (exact
address, then the ``@domain`` catch-all; an ``@other`` value keeps the local part), then
``local(8)`` for a local name (its ``/etc/aliases`` entry, keyed as postalias keys it, before
the Unix user's mailbox; ``\\name`` is the mailbox itself), recursively. A domain whose mail
Virtualmin disabled refuses everything. An import is proven by comparing this, address by
address, with the routing mailstate renders from the imported files.
"""

from __future__ import annotations

from mailstate.importer.virtualmin.files import AUTOREPLY, VirtualminFiles, unescape

REPLY = "reply"  # an autoreply answers


class VirtualminRouting:
    def __init__(self, vm: VirtualminFiles) -> None:
        self.vm = vm
        self.entries: dict[str, list[str]] = {}
        self.domains: set[str] = set()
        for _number, key, dests in vm.virtual:
            if "@" in key:
                self.entries.setdefault(key, dests)
            else:
                self.domains.add(key)
        self.off = {rec.get("dom", "").lower() for rec in vm.domains.values()
                    if "mail" in rec.get("disabled", "").split(",")}
        by_id = {rid: rec.get("dom", "").lower() for rid, rec in vm.domains.items()}
        self.off |= {rec.get("dom", "").lower() for rec in vm.domains.values()
                     if by_id.get(rec.get("alias", "")) in self.off}

    def addresses(self) -> list[str]:
        """Every address and catch-all (``@domain``) the virtual table names."""
        return sorted(k for k in self.entries if k.rpartition("@")[2] in self.domains)

    def route(self, address: str, depth: int = 0) -> frozenset[str]:
        """``mailbox USER``, outside addresses and ``reply``; empty when refused."""
        address = address.lower()
        local, _, domain = address.rpartition("@")
        if domain not in self.domains:
            return frozenset({address})
        if domain in self.off or depth > 12:
            return frozenset()
        dests = self.entries.get(address) if local else None
        if dests is None:
            dests = self.entries.get(f"@{domain}")
            if dests is None:
                return frozenset()
        out: set[str] = set()
        for dest in dests:
            if dest.startswith("@"):  # `@alias @domain`: the same local part there
                out |= self.route(f"{local}@{dest[1:]}", depth + 1)
            else:
                out |= self._value(dest, address, depth + 1, virtual=True)
        return frozenset(out)

    def _value(self, dest: str, address: str, depth: int, virtual: bool) -> set[str]:
        if depth > 12:
            return set()
        if dest.startswith("|"):
            return {REPLY} if AUTOREPLY.match(dest) else {f"program {dest}"}
        if dest.startswith("\\"):
            name = unescape(dest[1:])
            return {f"mailbox {name}"} if name in self.vm.users else set()
        if "@" in dest:  # an address, `jean\@autre.be` and `"jean@autre.be"` too
            if virtual and unescape(dest) == address:
                return set()  # names itself: User unknown in virtual alias table
            return set(self.route(unescape(dest), depth))
        name = unescape(dest)
        if name in self.vm.aliases:
            return {t for v in self.vm.aliases[name]
                    for t in self._value(v, address, depth + 1, virtual=False)}
        return {f"mailbox {name}"} if name in self.vm.users else set()


def routes(vm: VirtualminFiles) -> dict[str, frozenset[str]]:
    """Every address of the virtual table -> where Virtualmin's Postfix delivers it."""
    routing = VirtualminRouting(vm)
    return {a: routing.route(a) for a in routing.addresses()}
