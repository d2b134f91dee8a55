"""The notice a customer gets when mail for a new domain is set up (the manual's §1).

The provider's manual promises: "as soon as we have enabled the mail service, you receive a
message at your e-mail address". mailstate sends it to the account's ``contact:`` when an
apply adds a domain to a server: which domain, on which server, and where to read mail: only
the IMAP and POP3 services the server's Dovecot really offers (``doveconf -h protocols``),
at the host name Postfix knows itself by. No password is ever in it. It is sent once, like the
welcome mail: only the apply that adds the domain includes it. A domain whose mailboxes all
say ``welcome: false`` (what ``mailstate import --from virtualmin`` writes) is being taken
over, not set up, and gets no notice either.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
from email.headerregistry import Address
from email.message import EmailMessage

from mailstate.model.layout import Facts
from mailstate.model.state import Domain


def _services(facts: Facts, host: str) -> list[str]:
    if not facts.protocols:  # a local target: no Dovecot to ask
        return ["IMAP and POP3 servers:   not known yet; ask the provider"]
    offered = facts.protocols
    tls = facts.ssl in ("yes", "required")
    lines = []
    if "imap" in offered:
        ports = "port 993 (SSL/TLS) or 143 (STARTTLS)" if tls else "port 143"
        lines.append(f"IMAP server (receiving):  {host}, {ports}")
    if "pop3" in offered:
        ports = "port 995 (SSL/TLS) or 110 (STARTTLS)" if tls else "port 110"
        lines.append(f"POP3 server (receiving):  {host}, {ports}")
    return lines or ["This server offers no IMAP or POP3 access yet; ask the provider."]


def notice_text(domain: Domain, server: str, account: str, facts: Facts) -> str:
    host = facts.myhostname or server
    logins = sorted(domain.mailboxes)
    lines = [
        "The following mail domain has been set up successfully:",
        "",
        f"Domain name:              {domain.name}",
        f"Hosting server:           {server}",
        f"Account:                  {account}",
    ]
    if domain.domain_aliases:
        lines.append(f"Domain aliases:           {', '.join(domain.domain_aliases)}")
    lines.append(f"Mailboxes:                {', '.join(logins) if logins else '(none yet)'}")
    lines += ["", *_services(facts, host),
              "SMTP server (sending):    your internet provider's SMTP server", "",
              "Passwords are not sent by mail: each mailbox's password is set by whoever",
              "manages the domain file, and a welcome mail goes to each new mailbox.", "",
              "-- ", f"Postmaster of {domain.name}", ""]
    return "\n".join(lines)


def render_notice(domain: Domain, server: str, account: str, contact: str, facts: Facts,
                  now: dt.datetime | None = None) -> bytes:
    """The notice as a mail (RFC 5322, CRLF) to the account's contact."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = Address("Postmaster", "postmaster", domain.name)
    msg["To"] = contact
    msg["Subject"] = f"Mail domain {domain.name} is set up"
    msg["Date"] = email.utils.format_datetime(now or dt.datetime.now(dt.UTC))
    msg["Message-ID"] = email.utils.make_msgid("domain", domain=domain.name)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(notice_text(domain, server, account, facts))
    return msg.as_bytes()
