"""Rules across objects: plan limits, unique addresses, loops, dangling local targets.

Each rule returns issues that name the numbers involved ("11 mailboxes, plan recommended
allows 10") and point at the line that tipped it over. Rules see the resolved ``Desired``
result, so they check exactly what would be rendered.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace

from mailstate.config.desired import Desired, DomainInput
from mailstate.model.diagnostics import Issue
from mailstate.model.values import MIB, format_size

Rule = Callable[[Desired], Iterator[Issue]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


def check(desired: Desired) -> list[Issue]:
    try:
        return [issue for fn in RULES for issue in fn(desired)]
    finally:
        _INDEX.clear()
        _OWNERS.clear()


def _by_account(desired: Desired) -> dict[str, list[DomainInput]]:
    out: dict[str, list[DomainInput]] = defaultdict(list)
    for item in desired.inputs:
        out[item.account].append(item)
    return out


@rule
def plan_limits(desired: Desired) -> Iterator[Issue]:
    """Mailboxes, total quota and domains per account, over all its domains (manual §4)."""
    for account, items in sorted(_by_account(desired).items()):
        plan_name = desired.accounts[account].plan
        plan = desired.plans.get(plan_name)
        if plan is None:
            yield items[0].doc.issue(("account",), f"account {account!r} has unknown plan "
                                     f"{plan_name!r}; known: {', '.join(desired.plans)}")
            continue
        boxes = [(i, m) for i in items if i.domain for m in i.domain.mailboxes.values()]
        if plan.mailboxes is not None and len(boxes) > plan.mailboxes:
            item, box = boxes[plan.mailboxes]
            yield item.doc.issue(("mailboxes", box.login, "[key]"),
                                 f"account {account!r} has {len(boxes)} mailboxes; plan "
                                 f"{plan_name!r} allows {plan.mailboxes}")
        if plan.mail_quota is not None:
            total, over = 0, False
            for item, box in boxes:
                if box.quota > plan.mail_quota:
                    over = True
                    yield item.doc.issue(("mailboxes", box.login, "quota"),
                                         f"quota {format_size(box.quota)} is more than plan "
                                         f"{plan_name!r} allows in total "
                                         f"({format_size(plan.mail_quota)})")
                total += box.quota
            if total > plan.mail_quota and not over:  # else the line above says it better
                item, box = boxes[-1]
                yield item.doc.issue(("mailboxes", box.login, "[key]"),
                                     f"account {account!r} allocates {format_size(total)} of "
                                     f"mail quota over {len(boxes)} mailboxes; plan "
                                     f"{plan_name!r} allows {format_size(plan.mail_quota)}")
        if plan.domains is not None and len(items) > plan.domains:
            yield items[plan.domains].doc.issue(("domain",), f"account {account!r} has "
                                                f"{len(items)} domains; plan {plan_name!r} "
                                                f"allows {plan.domains}")
        aliases = sum(len(i.spec.domain_aliases) for i in items)
        if plan.domain_aliases is not None and aliases > plan.domain_aliases:
            yield items[-1].doc.issue(("domain_aliases",), f"account {account!r} has {aliases} "
                                      f"domain aliases; plan {plan_name!r} allows "
                                      f"{plan.domain_aliases}")


@rule
def quotas(desired: Desired) -> Iterator[Issue]:
    for item in desired.inputs:
        for box in item.domain.mailboxes.values() if item.domain else ():
            if box.quota < MIB:
                yield item.doc.issue(("mailboxes", box.login, "quota"),
                                     "a quota of zero would refuse all mail; give at least 1M")


Claim = tuple[DomainInput, tuple]  # a file, and where in it a name is claimed


@rule
def unique_names(desired: Desired) -> Iterator[Issue]:
    """A domain once in the whole repository (as domain or alias, whatever the server: on each
    server it is hosted, its mail stays local), a login once per server."""
    domains: dict[str, list[Claim]] = defaultdict(list)
    logins: dict[tuple[str, str], list[Claim]] = defaultdict(list)
    for item in desired.inputs:
        names = [(item.spec.domain, ("domain",))]
        names += [(a, ("domain_aliases", n)) for n, a in enumerate(item.spec.domain_aliases)]
        for name, loc in names:
            if any(other is item for other, _ in domains[name]):
                yield item.doc.issue(loc, f"{name} is this file's own domain; remove it "
                                     "from domain_aliases")
            else:
                domains[name].append((item, loc))
        for login in item.spec.mailboxes:
            logins[(item.server, login)].append((item, ("mailboxes", login, "[key]")))
    for name, claims in domains.items():
        for item, loc, others in _blamed(desired, claims):
            yield item.doc.issue(loc, f"domain {name} is also claimed by {others}; a domain "
                                 "is hosted once in the whole repository")
    for (server, login), claims in logins.items():
        for item, loc, others in _blamed(desired, claims):
            yield item.doc.issue(loc, f"login {login!r} is also used in {others}; logins are "
                                 f"unique per server ({server!r}; convention: <account>0001, "
                                 "<account>0002 …)")


def _blamed(desired: Desired, claims: list[Claim]) -> Iterator[tuple[DomainInput, tuple, str]]:
    """The claims of one name that are to blame: those in files new or changed in the change
    under review (``--base``), or every claim when none is (or nothing is known)."""
    if len(claims) < 2:
        return
    changed = [c for c in claims if desired.repo.is_changed(c[0].doc)]
    for item, loc in changed or claims:
        others = ", ".join(sorted({o.doc.path for o, _ in claims if o is not item}))
        yield item, loc, others


@rule
def unique_addresses(desired: Desired) -> Iterator[Issue]:
    """An address is a mailbox, an extra address or an alias: one of them, once."""
    for item in desired.inputs:
        seen: dict[str, str] = {}
        spec, name = item.spec, item.spec.domain
        for login in spec.mailboxes:
            seen.setdefault(f"{login}@{name}", f"mailbox {login}")
        for login, box in spec.mailboxes.items():
            for i, raw in enumerate(box.addresses):
                address = raw if "@" in raw else f"{raw}@{name}"
                address = address.lower()
                what = f"an extra address of mailbox {login}"
                if address in seen and seen[address] != what:
                    yield item.doc.issue(("mailboxes", login, "addresses", i),
                                         f"{address} is already {seen[address]}")
                elif address in seen:
                    yield item.doc.issue(("mailboxes", login, "addresses", i),
                                         f"{address} is listed twice")
                seen[address] = what
        for local in spec.aliases:
            address = f"{local}@{name}"
            if address in seen:
                yield item.doc.issue(("aliases", local, "[key]"),
                                     f"alias {address} is already {seen[address]}")
            seen[address] = "an alias"
        for role in spec.role_aliases:
            address = f"{role}@{name}"
            if address in seen:
                yield item.doc.issue(("role_aliases", role, "[key]"),
                                     f"{address} is already {seen[address]}; remove one")


AddressIndex = tuple[set[str], set[str], dict[str, list[str]]]
_INDEX: dict[tuple[int, str], AddressIndex] = {}


def _local_addresses(desired: Desired, server: str) -> AddressIndex:
    """Addresses that exist on a server, the domains it hosts, and address -> next hops.

    Built once per server and run (several rules need it); linear in the number of addresses.
    """
    key = (id(desired), server)
    if key in _INDEX:
        return _INDEX[key]
    exists: set[str] = set()
    hosted: set[str] = set()
    # next hops as lists (a set per address would be most of this index's memory at 10^5
    # mailboxes); a repeated hop is harmless: _cycles keeps each once
    edges: dict[str, list[str]] = defaultdict(list)
    for domain in desired.servers[server].domains.values():
        hosted.add(domain.name)
        hosted.update(domain.domain_aliases)
        own: set[str] = set()
        for box in domain.mailboxes.values():
            address = box.address
            own.add(address)
            for extra in box.addresses:
                own.add(extra)
                edges[extra].append(address)
            if box.forward:
                edges[address].extend(box.forward)
        for address, targets in domain.aliases.items():
            own.add(address)
            edges[address].extend(targets)
        exists |= own
        for alias in set(domain.domain_aliases) - {domain.name}:
            for address in own:
                if address.endswith(f"@{domain.name}"):
                    other = f"{address.rpartition('@')[0]}@{alias}"
                    exists.add(other)
                    edges[other].append(address)
    _INDEX[key] = (exists, hosted, edges)
    return _INDEX[key]


@rule
def local_targets(desired: Desired) -> Iterator[Issue]:
    """A forward or alias to an address in a hosted domain must exist there."""
    for server in desired.servers:
        exists, hosted, _ = _local_addresses(desired, server)
        for item in (i for i in desired.inputs if i.server == server and i.domain):
            checks = [(("aliases", a.split("@")[0]), t) for a, t in item.domain.aliases.items()
                      if a.split("@")[0] in item.spec.aliases]
            checks += [(("role_aliases", r), tuple(item.domain.aliases.get(f"{r}@"
                        f"{item.spec.domain}", ()))) for r in item.spec.role_aliases]
            checks += [(("mailboxes", b.login, "forward", "to"), b.forward)
                       for b in item.domain.mailboxes.values()]
            checks += [(("catch_all",), item.domain.catch_all)]
            for loc, targets in checks:
                for target in targets:
                    if target.split("@")[1] in hosted and target not in exists:
                        yield item.doc.issue(loc, f"{target} does not exist on server "
                                             f"{server!r}; create it or correct the address")


@rule
def loops(desired: Desired) -> Iterator[Issue]:
    """Forwarding that comes back to where it started would bounce mail around forever."""
    for server in desired.servers:
        _, _, edges = _local_addresses(desired, server)
        cycles = _cycles(edges)
        if not cycles:
            continue
        own = {a: box.address for d in desired.servers[server].domains.values()
               for box in d.mailboxes.values() for a in (box.address, *box.addresses)}
        for path in cycles:
            if path[0] in own and len({own.get(a) for a in path}) == 1:
                continue  # a mailbox forwarding to itself: forward_to_self says it better
            item = _owner(desired, server, path[0])
            if item is not None:
                yield item.doc.issue(item.origins.get(path[0], ("domain",)),
                                     "forwarding loop: " + " -> ".join([*path, path[0]]))


def _cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    """One cycle per back edge of a depth-first search: linear in the size of the graph."""
    # Only nodes that lead somewhere inside the graph can be on a cycle: peel off the rest
    # (addresses whose targets all end outside, then those leading only to them, ...), each
    # node once, through its predecessors: linear, however long a chain of forwards is.
    # Most addresses lead straight outside the graph (an extra address to its mailbox): they
    # are left out at once, without a collection each.
    inside: dict[str, list[str]] = {}
    for node, targets in edges.items():
        found = [t for t in targets if t in edges]
        if found:
            inside[node] = found
    graph = {n: {t for t in ts if t in inside} for n, ts in inside.items()}
    del inside
    before: dict[str, list[str]] = defaultdict(list)
    for node, targets in graph.items():
        for target in targets:
            before[target].append(node)
    left = {n: len(ts) for n, ts in graph.items()}
    dead = [n for n, count in left.items() if count == 0]
    while dead:
        node = dead.pop()
        for source in before.get(node, ()):
            left[source] -= 1
            if left[source] == 0:
                dead.append(source)
    edges = {n: {t for t in ts if left[t]} for n, ts in graph.items() if left[n]}
    colour: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles = []
    for root in sorted(edges):
        if root in colour:
            continue
        colour[root] = 1
        path = [root]
        stack = [iter(sorted(edges[root]))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                colour[path.pop()] = 2
            elif colour.get(nxt) == 1:  # back to the path: a loop (also an alias to itself)
                cycles.append(path[path.index(nxt):])
            elif nxt not in colour:
                colour[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges.get(nxt, ()))))
    return cycles


def _owner(desired: Desired, server: str, address: str) -> DomainInput | None:
    """The file of the domain (or domain alias) an address is at; an index, built once."""
    key = (id(desired), server)
    if key not in _OWNERS:
        owners: dict[str, DomainInput] = {}
        for item in desired.inputs:
            if item.server == server:
                for name in (item.spec.domain, *item.spec.domain_aliases):
                    owners.setdefault(name, item)
        _OWNERS[key] = owners
    return _OWNERS[key].get(address.split("@")[1])


_OWNERS: dict[tuple[int, str], dict[str, DomainInput]] = {}


_CONVENTION = re.compile(r"(?P<account>.+?)(?P<number>\d{4})")


@rule
def login_convention(desired: Desired) -> Iterator[Issue]:
    """Manual §6: logins are <account>0001, <account>0002 … (a warning, not an error)."""
    for item in desired.inputs:
        for login in item.spec.mailboxes:
            m = _CONVENTION.fullmatch(login)
            if login != item.account and not (m and m["account"] == item.account):
                issue = item.doc.issue(("mailboxes", login, "[key]"),
                                       f"login {login!r} does not follow the convention "
                                       f"{item.account}0001, {item.account}0002 …", "warning")
                yield replace(issue, group=f"logins of account {item.account!r} like it")


@rule
def forward_to_self(desired: Desired) -> Iterator[Issue]:
    for item in desired.inputs:
        for box in item.domain.mailboxes.values() if item.domain else ():
            own = {box.address, *box.addresses}
            if own & set(box.forward):
                yield item.doc.issue(("mailboxes", box.login, "forward", "to"),
                                     "a mailbox cannot forward to its own address; use "
                                     "`keep_copy: true` to keep mail in the mailbox")


MAX_TARGETS = 1000  # Postfix's virtual_alias_expansion_limit: more would bounce at delivery


@rule
def alias_size(desired: Desired) -> Iterator[Issue]:
    """An alias (or catch-all) that expands to more addresses than Postfix delivers to."""
    for item in desired.inputs:
        lists = [(("aliases", local), item.spec.aliases[local]) for local in item.spec.aliases]
        lists += [(("role_aliases", r), t) for r, t in item.spec.role_aliases.items()]
        lists += [(("catch_all",), item.spec.catch_all)]
        for loc, targets in lists:
            if len(targets) > MAX_TARGETS:
                yield item.doc.issue(loc, f"{len(targets)} targets; at most {MAX_TARGETS} (Postfix "
                                     "delivers to no more): use a mailing list instead")
