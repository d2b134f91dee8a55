"""What people write: the repository config (``mailstate.yaml``) and one file per domain.

Every model forbids unknown keys, so a typo is an error with a "did you mean", never a setting
silently ignored. Values use the manual's words and units (sizes in powers of 1024, durations
like ``10m``). ``desired.py`` turns these models into a ``state.ServerState`` per server.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from .layout import Layout
from .passwords import check_hash
from .values import (
    Address,
    Client,
    DomainName,
    Duration,
    LocalOrAddress,
    LocalPart,
    Login,
    Message,
    RealName,
    Size,
    Subject,
)

GIB = 1024**3
MIB = 1024**2
ROLE_ALIASES = ("abuse", "hostmaster", "postmaster", "webmaster")
PasswordHash = Annotated[str, AfterValidator(check_hash)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------- plans and accounts


class Plan(Strict):
    """A hosting plan (manual §4). None means unlimited."""

    mailboxes: int | None = Field(ge=0)
    mail_quota: Size | None = Field(description="total of all mailbox quotas, e.g. 30G")
    domains: int | None = Field(ge=0, description="domains (virtual servers) per account")
    web_quota: Size | None = Field(default=None, description="carried, not used by mail")
    domain_aliases: int | None = Field(default=None, ge=0)


BUILTIN_PLANS: dict[str, Plan] = {
    "light": Plan(mailboxes=1, mail_quota="3G", domains=1, web_quota="50M"),
    "recommended": Plan(mailboxes=10, mail_quota="30G", domains=5, web_quota="10G"),
    "extended": Plan(mailboxes=100, mail_quota="300G", domains=15, web_quota="100G"),
}


class Account(Strict):
    """A customer: owns domains, and its plan's limits count over all of them."""

    plan: str = Field(description="light, recommended, extended or a plan from `plans:`")
    contact: Address | None = Field(default=None, description="the customer's contact address")


# ---------------------------------------------------------------- servers


class Commands(Strict):
    """Shell commands run on the server. Defaults fit a systemd Debian server."""

    postfix_reload: str = "systemctl reload postfix"
    dovecot_reload: str = "systemctl reload dovecot"
    postgrey_restart: str = "systemctl restart postgrey"


class ServerGreylisting(Strict):
    """postgrey settings of one server (manual §13: the delay is 15 to 30 minutes)."""

    enabled: bool = True
    delay: Duration = Field(default=900, ge=1, le=86400, description="e.g. 15m")
    max_age: Duration = Field(default=35 * 86400, ge=86400, description="e.g. 35d")
    whitelist_clients: list[Client] = Field(default_factory=list,
                                         description="host names, IP addresses or networks")
    whitelist_recipients: list[Address] = Field(
        default_factory=list, description="addresses never greylisted (whole domains opt out "
        "with `greylisting: false` in their domain file)")
    auto_whitelist_clients: int = Field(default=5, ge=0,
                                        description="postgrey's --auto-whitelist-clients")


class Server(Strict):
    """One mail server and how to reach it."""

    target: str | None = Field(default=None, description="ssh://user@host[:port] or local:DIR")
    known_hosts: str | None = None
    identity: str | None = Field(default=None, description="private key file for SSH")
    layout: Layout = Layout()
    commands: Commands = Commands()
    greylisting: ServerGreylisting = ServerGreylisting()


class Defaults(Strict):
    quota: Size = Field(default=3 * GIB, description="mailbox quota when a mailbox has none")
    vacation_interval: Duration = Field(default=600, ge=1, le=30 * 86400,
                                        description="manual §9: 10 minutes")


class Config(Strict):
    """The repository config, ``mailstate.yaml``."""

    domains: str = Field(default="domains", description="directory of domain files")
    plans: dict[str, Plan] = Field(default_factory=dict, description="added to or overriding "
                                   "the built-in light/recommended/extended")
    accounts: dict[Login, Account] = Field(default_factory=dict)
    servers: dict[Login, Server] = Field(default_factory=dict)
    defaults: Defaults = Defaults()

    def all_plans(self) -> dict[str, Plan]:
        return {**BUILTIN_PLANS, **self.plans}


# ---------------------------------------------------------------- domain files


class Forward(Strict):
    """Forwarding of a mailbox (manual §8)."""

    to: list[Address] = Field(min_length=1, max_length=32)
    keep_copy: bool = Field(default=True, description="also deliver into the mailbox")


class VacationSpec(Strict):
    """An automatic reply (manual §9)."""

    subject: Subject
    message: Message
    from_: Address | None = Field(default=None, alias="from")
    interval: Duration | None = Field(default=None, ge=1, le=30 * 86400,
                                      description="minimum time between two replies to "
                                      "one sender; manual: 10m")
    start: dt.date | None = None
    end: dt.date | None = None

    @model_validator(mode="after")
    def _dates(self) -> VacationSpec:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"the vacation ends ({self.end}) before it starts ({self.start})")
        return self


class MailboxSpec(Strict):
    """A mailbox (manual §6, §7, §8, §9, §11)."""

    name: RealName
    password: PasswordHash
    quota: Size | None = Field(default=None, description="e.g. 3G; default 3G")
    primary_address: bool = Field(default=True, description="whether login@domain receives mail")
    addresses: list[LocalOrAddress] = Field(default_factory=list,
                                            description="extra addresses: info or info@domain")
    forward: Forward | None = None
    vacation: VacationSpec | None = None
    welcome: bool = Field(default=True, description="send a welcome mail when created")


class GreylistingSpec(Strict):
    enabled: bool = True


class DomainFile(Strict):
    """One domain, as its customer writes it."""

    domain: DomainName
    account: Login
    plan: str | None = Field(default=None, description="the account's plan, when the file is "
                             "used without a mailstate.yaml")
    server: Login | None = None
    admin: Login | None = Field(default=None, description="mailbox receiving role aliases")
    domain_aliases: list[DomainName] = Field(default_factory=list)
    greylisting: bool = True
    catch_all: list[LocalOrAddress] = Field(default_factory=list,
                                     description="where mail to unknown addresses goes")
    role_aliases: dict[Literal["abuse", "hostmaster", "postmaster", "webmaster"],
                       list[LocalOrAddress]] = Field(
        default_factory=dict, description="override where abuse@ etc. go (default: admin)")
    mailboxes: dict[Login, MailboxSpec] = Field(default_factory=dict)
    aliases: dict[LocalPart, list[LocalOrAddress]] = Field(
        default_factory=dict, description="forward-only addresses: local part -> targets")
