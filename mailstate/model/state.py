"""The normalised state of one mail server: what render writes and parse reads back.

Domain files (``schema.py``) are what people write; this module is what a server holds once
every default, role alias and plan rule has been applied. ``render(state)`` turns it into files
and ``parse(files)`` turns those files back into an equal state, so that desired and live
states can be compared as data instead of as text.

Everything here is already validated: addresses are lower-case ``local@domain`` strings,
logins and domains contain only characters that are safe in every file mailstate renders.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Vacation(Frozen):
    """An automatic reply (manual §9), rendered as a Sieve ``vacation`` action."""

    subject: str
    message: str
    sender: str | None = None  # the reply's From: address; None lets Sieve choose
    interval: int = 600  # seconds between two replies to the same sender
    start: dt.date | None = None
    end: dt.date | None = None


class Mailbox(Frozen):
    """A Dovecot user with its Postfix addresses (manual §6–§9)."""

    login: str
    domain: str
    name: str  # real name, shown in the passwd-file gecos field
    password: str  # a Dovecot scheme-prefixed hash, never plain text
    quota: int  # bytes, a multiple of 1 MiB
    primary_enabled: bool = True  # whether login@domain itself accepts mail from outside
    addresses: tuple[str, ...] = ()  # extra full addresses at `domain`, sorted
    forward: tuple[str, ...] = ()  # forwarding targets, sorted
    keep_copy: bool = True  # with forwarding: also deliver into the mailbox
    vacation: Vacation | None = None

    @property
    def address(self) -> str:
        return f"{self.login}@{self.domain}"


class Domain(Frozen):
    """A mail domain: its mailboxes, forward-only and role aliases, domain aliases."""

    name: str
    domain_aliases: tuple[str, ...] = ()  # other domains receiving the same mail, sorted
    greylisting: bool = True
    mailboxes: dict[str, Mailbox] = Field(default_factory=dict)  # by login
    aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # full address -> targets
    catch_all: tuple[str, ...] = ()  # targets for unknown local parts; empty = none


class Greylisting(Frozen):
    """Server-wide postgrey settings (manual §13)."""

    enabled: bool = True
    delay: int = 900  # seconds
    max_age: int = 35  # days a triplet is remembered
    auto_whitelist_clients: int = 5  # postgrey's default; 0 turns auto-whitelisting off
    whitelist_clients: tuple[str, ...] = ()  # host names, IPs or CIDR networks, sorted
    whitelist_recipients: tuple[str, ...] = ()  # addresses never greylisted, sorted


QUOTA_WARNING_SUBJECT = "Your mailbox is {percent} % full"
QUOTA_WARNING_MESSAGE = """\
Hello,

your mailbox {address} now holds {used} of its {quota}: it is {percent} % full.

When it is full, mail sent to you is refused and its senders are told so. Delete messages you
no longer need (and empty the trash), or ask your provider for a larger quota.

This message was sent automatically; please do not reply to it.
"""


class QuotaWarnings(Frozen):
    """One mail to the user when the mailbox crosses each threshold (Dovecot's quota_warning).

    The text may name {percent}, {address}, {used} and {quota}; the server fills them in."""

    thresholds: tuple[int, ...] = (95, 80)  # percent, highest first (Dovecot 2.3 wants that)
    subject: str = QUOTA_WARNING_SUBJECT
    message: str = QUOTA_WARNING_MESSAGE  # ends with one newline


class ServerState(Frozen):
    """Everything mailstate manages on one server."""

    domains: dict[str, Domain] = Field(default_factory=dict)  # by domain name
    greylisting: Greylisting = Greylisting()
    quota_warnings: QuotaWarnings = QuotaWarnings()

    def mailboxes(self) -> dict[str, Mailbox]:
        """All mailboxes of the server by login (logins are unique per server)."""
        return {m.login: m for d in self.domains.values() for m in d.mailboxes.values()}
