"""Domain files + config -> the desired ``ServerState`` of every server.

This is where the manual's defaults become explicit: a mailbox without quota gets 3G, the role
aliases abuse@, hostmaster@, postmaster@ and webmaster@ point at the domain administrator's
mailbox, local parts become full addresses. Every address keeps the file position it came from
so that ``policy.py`` can point at the right line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailstate.config.ownership import Ownership
from mailstate.config.repository import Repository
from mailstate.config.yaml_reader import Document, Issue
from mailstate.model import state as st
from mailstate.model.values import ROLE_ALIASES, check_address, check_local_part
from mailstate.schema import Account, DomainFile, HostingPlan, Server

STANDALONE_SERVER = "local"


@dataclass
class DomainInput:
    """One domain file with what it resolved to."""

    doc: Document
    spec: DomainFile
    server: str
    account: str
    domain: st.Domain | None = None
    origins: dict[str, tuple] = field(default_factory=dict)  # address -> loc in doc


@dataclass
class Desired:
    """Everything a run wants: states per server, plus facts policy needs."""

    repo: Repository
    servers: dict[str, st.ServerState]
    inputs: list[DomainInput]
    accounts: dict[str, Account]
    plans: dict[str, HostingPlan]
    welcome: dict[str, set[str]]  # server -> logins that get a welcome mail when created

    def release_files(self) -> None:
        """Forget what only the checks needed: each domain file's mailboxes and aliases as
        written (the resolved domains keep all of them) and where each address was written.
        At 10^5 mailboxes that is a few hundred MB a plan or an apply need not hold."""
        light: dict[int, DomainFile] = {}
        for n, (doc, spec) in enumerate(self.repo.domains):
            light[id(spec)] = spec.model_copy(update={"mailboxes": {}, "aliases": {}})
            self.repo.domains[n] = (doc, light[id(spec)])
        for item in self.inputs:
            item.spec = light.get(id(item.spec)) or item.spec.model_copy(
                update={"mailboxes": {}, "aliases": {}})
            item.origins = {}

    def server_config(self, name: str) -> Server:
        return self.repo.config.servers.get(name, Server())

    def intent(self, server: str) -> ServerIntent:
        """What one server should become: all that preparing its plan may look at."""
        welcome = frozenset(self.welcome.get(server, set()))
        contacts: dict[str, tuple[str, str]] = {}
        for item in self.inputs:
            account = self.accounts.get(item.account)
            if item.server != server or item.domain is None or account is None \
                    or not account.contact:
                continue
            boxes = set(item.domain.mailboxes)
            if boxes and not boxes & welcome:
                continue  # every mailbox says `welcome: false`: taken over (import), not set up
            contacts[item.domain.name] = (item.account, str(account.contact))
        return ServerIntent(server, self.server_config(server), self.servers[server], welcome,
                            contacts)


@dataclass(frozen=True)
class ServerIntent:
    """One server's part of the desired state: its settings, its state, the logins that get a
    welcome mail when created, and the account and contact to tell of each domain that can be
    new (a domain some of whose mailboxes get a welcome mail, or that has none)."""

    server: str
    config: Server
    state: st.ServerState
    welcome: frozenset[str]
    contacts: dict[str, tuple[str, str]]


def resolve(target: str, domain: str) -> str:
    """'info' -> 'info@domain'; a full address is checked and kept."""
    if "@" in target:
        return check_address(target)
    return f"{check_local_part(target)}@{domain}"


def _account_for(repo: Repository, doc: Document, spec: DomainFile, owners: Ownership,
                 issues: list[Issue]) -> Account | None:
    """The account of a file, when the operator gave it the file's domain and aliases.

    A file whose domain its account does not own is left out of everything after this (plan
    limits, uniqueness, rendering): naming another account must not spend that account's
    quota nor put errors into its files.
    """
    plans = repo.config.all_plans()
    if repo.standalone:
        plan = spec.plan or "light"
        if plan not in plans:
            issues.append(doc.issue(("plan",), f"unknown plan {plan!r}; choose one of "
                                    f"{', '.join(plans)}"))
            return None
        return Account(plan=plan)
    account = repo.config.accounts.get(spec.account)
    if account is None:
        issues.append(doc.issue(("account",), f"account {spec.account!r} is not in "
                                "mailstate.yaml; add it under `accounts:` with its plan"))
        return None
    folder = repo.folders.get(doc.path)
    if folder is not None and folder != spec.account:
        issues.append(doc.issue(("account",), f"this file is in the folder of account "
                                f"{folder!r} but says account {spec.account!r}; a file "
                                f"belongs in {repo.config.domains}/<its account>/"))
        return None
    claims = [(("domain",), spec.domain)]
    claims += [(("domain_aliases", n), a) for n, a in enumerate(spec.domain_aliases)]
    refused = False
    for loc, name in claims:
        problem = owners.problem(spec.account, name)
        if problem is not None:
            issues.append(doc.issue(loc, problem))
            refused = True
    if refused:
        return None
    if spec.plan and spec.plan != account.plan:
        issues.append(doc.issue(("plan",), f"this file says plan {spec.plan!r} but account "
                                f"{spec.account!r} has plan {account.plan!r} in mailstate.yaml"))
    return account


def _server_for(repo: Repository, doc: Document, spec: DomainFile,
                issues: list[Issue]) -> str | None:
    servers = repo.config.servers
    if repo.standalone:
        return spec.server or STANDALONE_SERVER
    if spec.server is None:
        if len(servers) == 1:
            return next(iter(servers))
        issues.append(doc.issue(("domain",), "this domain names no `server:` and mailstate.yaml "
                                f"has {len(servers)} servers; add `server: NAME`"))
        return None
    if spec.server not in servers:
        known = ", ".join(servers) or "none"
        issues.append(doc.issue(("server",), f"server {spec.server!r} is not in mailstate.yaml "
                                f"(known: {known}); add it under `servers:`"))
        return None
    return spec.server


def _mailbox(item: DomainInput, login: str, quota_default: int, interval_default: int,
             issues: list[Issue]) -> st.Mailbox | None:
    spec, name = item.spec.mailboxes[login], item.spec.domain
    ok = True
    addresses: list[str] = []
    for i, raw in enumerate(spec.addresses):
        loc = ("mailboxes", login, "addresses", i)
        try:
            address = resolve(raw, name)
        except ValueError as exc:
            issues.append(item.doc.issue(loc, str(exc)))
            ok = False
            continue
        if address.split("@")[1] != name:
            issues.append(item.doc.issue(loc, f"{address} is not at {name}; extra addresses "
                                         "belong to the mailbox's own domain (domain aliases "
                                         "get them automatically)"))
            ok = False
            continue
        item.origins.setdefault(address, loc)
        addresses.append(address)
    item.origins.setdefault(f"{login}@{name}", ("mailboxes", login))
    vacation = None
    if spec.vacation:
        v = spec.vacation
        own = {name, *item.spec.domain_aliases}
        if v.from_ and v.from_.split("@")[1] not in own:
            issues.append(item.doc.issue(("mailboxes", login, "vacation", "from"),
                                         f"{v.from_} is not an address of this domain; a reply "
                                         f"may be sent only as an address at "
                                         f"{', '.join(sorted(own))}"))
            ok = False
        vacation = st.Vacation(subject=v.subject, message=v.message, sender=v.from_,
                               interval=v.interval or interval_default, start=v.start, end=v.end)
    if not ok:
        return None
    return st.Mailbox(
        login=login, domain=name, name=spec.name, password=spec.password,
        quota=spec.quota if spec.quota is not None else quota_default,
        primary_enabled=spec.primary_address, addresses=tuple(sorted(set(addresses))),
        forward=tuple(sorted(set(spec.forward.to))) if spec.forward else (),
        keep_copy=spec.forward.keep_copy if spec.forward else True, vacation=vacation)


def _aliases(item: DomainInput, admin_address: str | None,
             issues: list[Issue]) -> dict[str, tuple[str, ...]]:
    spec, name = item.spec, item.spec.domain
    aliases: dict[str, tuple[str, ...]] = {}
    for local, targets in spec.aliases.items():
        address = f"{local}@{name}"
        resolved = _targets(item, ("aliases", local), targets, issues)
        if not targets:
            issues.append(item.doc.issue(("aliases", local), f"alias {address} has no target; "
                                         "give at least one address, or remove the alias"))
        if not resolved:
            continue
        item.origins.setdefault(address, ("aliases", local, "[key]"))
        aliases[address] = resolved
    for role in ROLE_ALIASES:
        address = f"{role}@{name}"
        if role in spec.role_aliases:
            resolved = _targets(item, ("role_aliases", role), spec.role_aliases[role], issues)
            if resolved:
                item.origins[address] = ("role_aliases", role, "[key]")
                aliases[address] = resolved
        elif address not in item.origins and admin_address:
            aliases[address] = (admin_address,)  # made automatically, as in manual §10
    return aliases


def _targets(item: DomainInput, loc: tuple, targets: list[str],
             issues: list[Issue]) -> tuple[str, ...]:
    out = []
    for i, raw in enumerate(targets):
        try:
            out.append(resolve(raw, item.spec.domain))
        except ValueError as exc:
            issues.append(item.doc.issue((*loc, i), str(exc)))
    return tuple(sorted(set(out)))


def build(repo: Repository) -> tuple[Desired, list[Issue]]:
    """Resolve every domain file; policy rules run afterwards on the result."""
    issues: list[Issue] = []
    config = repo.config
    plans = config.all_plans()
    inputs: list[DomainInput] = []
    accounts: dict[str, Account] = {}
    owners = Ownership(config.accounts)
    for doc, spec in repo.domains:
        account = _account_for(repo, doc, spec, owners, issues)
        server = _server_for(repo, doc, spec, issues)
        if account is None or server is None:
            continue
        accounts.setdefault(spec.account, account)
        inputs.append(DomainInput(doc, spec, server, spec.account))

    welcome: dict[str, set[str]] = {}
    logins: dict[tuple[str, str, str], DomainInput] | None = None  # made when first needed
    for item in inputs:
        spec = item.spec
        mailboxes = {}
        for login in spec.mailboxes:
            mailbox = _mailbox(item, login, config.defaults.quota,
                               config.defaults.vacation_interval, issues)
            if mailbox is not None:
                mailboxes[login] = mailbox
                if spec.mailboxes[login].welcome:
                    welcome.setdefault(item.server, set()).add(login)
        admin = spec.admin or spec.account
        admin_address = f"{admin}@{spec.domain}" if admin in spec.mailboxes else None
        if admin_address is None and spec.admin:
            if logins is None:
                logins = {}
                for other in inputs:
                    for name in other.spec.mailboxes:
                        logins.setdefault((other.account, other.server, name), other)
            admin_address = _admin_elsewhere(logins, item, admin)
            if admin_address is None:
                issues.append(item.doc.issue(("admin",), f"admin mailbox {admin!r} is not a "
                                             "mailbox of this account on this server; add it "
                                             "under `mailboxes:` or fix `admin:`"))
        aliases = _aliases(item, admin_address, issues)
        missing_roles = [r for r in ROLE_ALIASES if f"{r}@{spec.domain}" not in aliases
                         and f"{r}@{spec.domain}" not in item.origins]
        if missing_roles and not spec.admin and admin_address is None:
            issues.append(item.doc.issue(("domain",), f"no administrator mailbox for the role "
                                         f"aliases ({', '.join(missing_roles)}): there is no "
                                         f"mailbox {admin!r}; set `admin:` to a mailbox login "
                                         "or set `role_aliases:`", "error"))
        catch_all = _targets(item, ("catch_all",), spec.catch_all, issues)
        item.domain = st.Domain(
            name=spec.domain, domain_aliases=tuple(sorted(set(spec.domain_aliases))),
            greylisting=spec.greylisting, mailboxes=mailboxes, aliases=aliases,
            catch_all=catch_all)

    servers: dict[str, st.ServerState] = {}
    for name in sorted({i.server for i in inputs}):
        domains = {i.domain.name: i.domain for i in inputs if i.server == name and i.domain}
        servers[name] = server_state(repo.config.servers.get(name, Server()), domains)
    return Desired(repo, servers, inputs, accounts, plans, welcome), issues


def server_state(server: Server, domains: dict[str, st.Domain]) -> st.ServerState:
    """A server's desired state: its domains and its postgrey settings."""
    grey = server.greylisting
    warn = server.quota_warnings
    return st.ServerState(domains=dict(sorted(domains.items())),
                          quota_warnings=st.QuotaWarnings(
                              thresholds=tuple(sorted(warn.thresholds, reverse=True)),
                              subject=warn.subject or st.QUOTA_WARNING_SUBJECT,
                              message=(warn.message.rstrip("\n") + "\n" if warn.message
                                       else st.QUOTA_WARNING_MESSAGE))
                          if warn.thresholds else st.QuotaWarnings(thresholds=()),
                          greylisting=st.Greylisting(
                              enabled=grey.enabled, delay=grey.delay,
                              max_age=grey.max_age // 86400 or 1,
                              whitelist_clients=tuple(sorted(set(grey.whitelist_clients))),
                              whitelist_recipients=tuple(sorted(set(
                                  grey.whitelist_recipients))),
                              auto_whitelist_clients=grey.auto_whitelist_clients))


def _admin_elsewhere(logins: dict[tuple[str, str, str], DomainInput], item: DomainInput,
                     login: str) -> str | None:
    """The address of `login` in another domain of the same account and server (`logins`:
    (account, server, login) -> its domain input; a scan per domain would be quadratic)."""
    other = logins.get((item.account, item.server, login))
    return f"{login}@{other.spec.domain}" if other is not None else None
