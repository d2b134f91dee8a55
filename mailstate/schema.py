"""What people write: the repository config (``mailstate.yaml``) and one file per domain.

Every model forbids unknown keys, so a typo is an error with a "did you mean", never a setting
silently ignored. Values use the manual's words and units (sizes in powers of 1024, durations
like ``10m``). ``desired.py`` turns these models into a ``state.ServerState`` per server.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from mailstate.model.layout import Layout
from mailstate.model.passwords import check_hash
from mailstate.model.values import (
    GIB,
    Address,
    Client,
    Date,
    DomainName,
    DomainRule,
    LocalOrAddress,
    LocalPart,
    Login,
    Message,
    RealName,
    Size,
    Subject,
    duration_between,
)

PasswordHash = Annotated[str, AfterValidator(check_hash)]
GreylistDelay = duration_between(1, 86400)
GreylistMaxAge = duration_between(86400)
VacationInterval = duration_between(1, 30 * 86400)


class Strict(BaseModel):
    # defer_build: a model is built when first used, so a run that uses few (a plan from the
    # plan cache) does not pay for all of them at import
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              defer_build=True)


# ---------------------------------------------------------------- plans and accounts


class HostingPlan(Strict):
    """A hosting plan (manual §4). None means unlimited."""

    mailboxes: int | None = Field(ge=0, description="mailboxes per account; null: unlimited")
    mail_quota: Size | None = Field(description="total of all mailbox quotas, e.g. 30G")
    domains: int | None = Field(ge=0, description="domains (virtual servers) per account")
    web_quota: Size | None = Field(default=None, description="carried, not used by mail")
    domain_aliases: int | None = Field(default=None, ge=0,
                                       description="domain aliases per account; null: unlimited")


BUILTIN_PLANS: dict[str, HostingPlan] = {
    "light": HostingPlan(mailboxes=1, mail_quota="3G", domains=1, web_quota="50M"),
    "recommended": HostingPlan(mailboxes=10, mail_quota="30G", domains=5, web_quota="10G"),
    "extended": HostingPlan(mailboxes=100, mail_quota="300G", domains=15, web_quota="100G"),
}


class Account(Strict):
    """A customer: owns domains, and its plan's limits count over all of them."""

    plan: str = Field(description="light, recommended, extended or a plan from `plans:`")
    contact: Address | None = Field(default=None, description="the customer's contact address")
    domains: list[DomainRule] = Field(
        default_factory=list, description="the domains and domain aliases this account may "
        "use: `monsite.be`, or `*.monsite.be` for every name under monsite.be. A domain file "
        "may claim nothing else (an account without `domains:` may use no domain)")


# ---------------------------------------------------------------- servers


class Commands(Strict):
    """Shell commands run on the server. Defaults fit a systemd Debian server."""

    postfix_reload: str = Field(default="systemctl reload postfix",
                                description="reloads Postfix after its maps changed")
    dovecot_reload: str = Field(default="systemctl reload dovecot",
                                description="reloads Dovecot after its users or config changed")
    postgrey_restart: str = Field(default="systemctl restart postgrey",
                                  description="restarts postgrey after its options changed")


class ServerGreylisting(Strict):
    """postgrey settings of one server (manual §13: the delay is 15 to 30 minutes)."""

    enabled: bool = Field(default=True, description="greylisting on this server at all")
    delay: GreylistDelay = Field(default=900, description="how long an unknown sender waits, "
                                 "e.g. 15m (manual: 15 to 30 minutes)")
    max_age: GreylistMaxAge = Field(default=35 * 86400, description="how long a sender that "
                                    "passed is remembered, e.g. 35d")
    whitelist_clients: list[Client] = Field(default_factory=list,
                                         description="host names, IP addresses or networks")
    whitelist_recipients: list[Address] = Field(
        default_factory=list, description="addresses never greylisted (whole domains opt out "
        "with `greylisting: false` in their domain file)")
    auto_whitelist_clients: int = Field(default=5, ge=0,
                                        description="postgrey's --auto-whitelist-clients")


SrvService = Literal["imap", "imaps", "pop3", "pop3s", "submission", "submissions"]


class ServerDns(Strict):
    """What `mailstate dns` says about a server's domains."""

    services: list[SrvService] = Field(
        default_factory=lambda: ["imaps", "pop3s"],
        description="the services this server offers to mail clients, published as RFC 6186 "
        "SRV records (imap 143, imaps 993, pop3 110, pop3s 995, submission 587, submissions "
        "465); [] for none")


class ServerQuotaWarnings(Strict):
    """The mail a user gets when the mailbox crosses a threshold of its quota."""

    thresholds: list[int] = Field(default_factory=lambda: [80, 95], max_length=5,
                                  description="percent of the quota; one mail when crossing "
                                  "each (empty: no warnings)")
    subject: Subject | None = Field(default=None, description="the warning's subject; may "
                                    "name {percent}")
    message: Message | None = Field(default=None, description="the warning's text; may name "
                                    "{percent}, {address}, {used} and {quota}")

    @model_validator(mode="after")
    def _percent(self) -> ServerQuotaWarnings:
        for t in self.thresholds:
            if not 1 <= t <= 100:
                raise ValueError(f"a quota warning threshold is a percentage from 1 to 100, "
                                 f"not {t}")
        if len(set(self.thresholds)) != len(self.thresholds):
            raise ValueError("a quota warning threshold is listed twice")
        return self


class Server(Strict):
    """One mail server and how to reach it."""

    target: str | None = Field(default=None, description="ssh://user@host[:port] or local:DIR")
    known_hosts: str | None = Field(default=None, description="known_hosts file with the "
                                    "server's host key (default ~/.ssh/known_hosts)")
    identity: str | None = Field(default=None, description="private key file for SSH")
    layout: Layout = Field(default=Layout(), description="where mailstate's files live")
    commands: Commands = Field(default=Commands(), description="reload commands")
    greylisting: ServerGreylisting = Field(default=ServerGreylisting(),
                                           description="postgrey settings")
    mail_host: DomainName | None = Field(
        default=None, description="the host name other servers deliver to (the domains' MX); "
        "default: the host name of an ssh:// `target:`")
    dns: ServerDns = Field(default=ServerDns(), description="what `mailstate dns` publishes "
                           "for this server's domains")
    quota_warnings: ServerQuotaWarnings = Field(default=ServerQuotaWarnings(),
                                                description="quota warning mails")
    max_safe_delete: int = Field(default=30, ge=0, le=100, description="the largest share "
                                 "(percent) of this server's mailboxes and addresses one apply "
                                 "may remove or disable without --force")


class Defaults(Strict):
    """Values used where a domain file says nothing."""

    quota: Size = Field(default=3 * GIB, description="mailbox quota when a mailbox has none")
    vacation_interval: VacationInterval = Field(default=600,
                                                description="manual §9: 10 minutes")


class Dmarc(Strict):
    """The DMARC record of every domain (RFC 7489)."""

    policy: Literal["none", "quarantine", "reject"] = Field(
        default="none", description="what receivers do with mail that fails DMARC (p=)")
    report_to: Address | None = Field(default=None, description="where receivers send "
                                      "aggregate reports (rua=mailto:); none: no reports")


class Dns(Strict):
    """The DNS records `mailstate dns` prints and checks for every domain."""

    ttl: int = Field(default=3600, ge=60, le=604800, description="TTL of every record, seconds")
    dmarc: Dmarc = Field(default=Dmarc(), description="the DMARC record (default p=none)")


class Config(Strict):
    """The repository config, ``mailstate.yaml``."""

    domains: str = Field(default="domains", description="directory of domain files")
    plans: dict[str, HostingPlan] = Field(default_factory=dict, description="added to or "
                                          "overriding the built-in light/recommended/extended")
    accounts: dict[Login, Account] = Field(default_factory=dict,
                                           description="customers by account name")
    servers: dict[Login, Server] = Field(default_factory=dict,
                                         description="mail servers by name")
    ssh_config: str | None = Field(default=None, description="an OpenSSH client config file "
                                   "(host aliases, User, Port, IdentityFile, ProxyJump, "
                                   "ServerAliveInterval) used instead of ~/.ssh/config")
    defaults: Defaults = Field(default=Defaults(), description="values used where a domain "
                               "file says nothing")
    dns: Dns = Field(default=Dns(), description="the DNS records of the domains "
                     "(`mailstate dns`)")

    def all_plans(self) -> dict[str, HostingPlan]:
        return {**BUILTIN_PLANS, **self.plans}


# ---------------------------------------------------------------- domain files


class Forward(Strict):
    """Forwarding of a mailbox (manual §8)."""

    to: list[Address] = Field(min_length=1, max_length=32,
                              description="addresses the mail is forwarded to")
    keep_copy: bool = Field(default=True, description="also deliver into the mailbox")


class VacationSpec(Strict):
    """An automatic reply (manual §9)."""

    subject: Subject = Field(description="subject of the reply")
    message: Message = Field(description="text of the reply")
    from_: Address | None = Field(default=None, alias="from",
                                  description="sender of the reply (default: the mailbox)")
    interval: VacationInterval | None = Field(default=None,
                                              description="minimum time between two replies "
                                              "to one sender; manual: 10m")
    start: Date | None = Field(default=None, description="first day of replies, YYYY-MM-DD")
    end: Date | None = Field(default=None, description="last day of replies, YYYY-MM-DD")

    @model_validator(mode="after")
    def _dates(self) -> VacationSpec:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"the vacation ends ({self.end}) before it starts ({self.start})")
        return self


class MailboxSpec(Strict):
    """A mailbox (manual §6, §7, §8, §9, §11)."""

    name: RealName = Field(description="the user's real name")
    password: PasswordHash = Field(description="a hash from `mailstate hash-password`, "
                                   "never plain text")
    quota: Size | None = Field(default=None, description="e.g. 3G; default 3G")
    primary_address: bool = Field(default=True, description="whether login@domain receives mail")
    addresses: list[LocalOrAddress] = Field(default_factory=list,
                                            description="extra addresses: info or info@domain")
    forward: Forward | None = Field(default=None, description="forwarding (manual §8)")
    vacation: VacationSpec | None = Field(default=None,
                                          description="automatic reply (manual §9)")
    welcome: bool = Field(default=True, description="send a welcome mail when created")


class GreylistingSpec(Strict):
    enabled: bool = Field(default=True, description="greylisting for this domain")


class DomainFile(Strict):
    """One domain, as its customer writes it."""

    domain: DomainName = Field(description="the domain, e.g. monsite.be")
    account: Login = Field(description="the customer account that owns the domain")
    plan: str | None = Field(default=None, description="the account's plan, when the file is "
                             "used without a mailstate.yaml")
    server: Login | None = Field(default=None, description="the server hosting the domain")
    admin: Login | None = Field(default=None, description="mailbox receiving role aliases")
    domain_aliases: list[DomainName] = Field(default_factory=list, description="domains that "
                                            "receive this domain's mail, e.g. monsite.com")
    greylisting: bool = Field(default=True, description="greylist mail to this domain")
    catch_all: list[LocalOrAddress] = Field(default_factory=list,
                                     description="where mail to unknown addresses goes")
    role_aliases: dict[Literal["abuse", "hostmaster", "postmaster", "webmaster"],
                       list[LocalOrAddress]] = Field(
        default_factory=dict, description="override where abuse@ etc. go (default: admin)")
    mailboxes: dict[Login, MailboxSpec] = Field(default_factory=dict,
                                                description="mailboxes by login")
    aliases: dict[LocalPart, list[LocalOrAddress]] = Field(
        default_factory=dict, description="forward-only addresses: local part -> targets")
