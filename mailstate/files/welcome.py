"""Welcome mails for the upload, thousands at a time: a simple mail without the email package.

``render.render_welcome`` builds each mail with the ``email`` package and parses it back to
prove it names exactly one recipient; that costs about 2 ms a mail, 20 s for a first apply of
10,000 mailboxes. Most mails need none of it: when the real name is plain words (letters,
digits, single spaces), the login and domain are dot-atoms and every header line fits in 78
columns, nothing needs quoting, encoding or folding, and the headers are written as the
``email`` package writes them. The body is quoted-printable (always: valid for any text).
Everything else (accents, punctuation, long names) goes through ``render_welcome``.
tests/unit/test_welcome.py proves both kinds read the same to a mail reader.
"""

from __future__ import annotations

import binascii
import datetime as dt
import email.utils
import re

from mailstate.files.render import render_welcome, welcome_body
from mailstate.model.state import Mailbox

PLAIN_NAME = re.compile(r"[A-Za-z0-9]+(?: [A-Za-z0-9]+)*")
DOT_ATOM = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*")
MAX_LINE = 78  # what email.policy.SMTP folds at


def welcome_mail(mailbox: Mailbox, *, now: dt.datetime, protocols: tuple[str, ...]) -> bytes:
    """The welcome mail of a new mailbox: as ``render_welcome``'s, built fast when simple."""
    head = plain_headers(mailbox, now)
    if head is None:
        return render_welcome(mailbox, now=now, protocols=protocols)
    body = welcome_body(mailbox, protocols=protocols).replace("\r\n", "\n")
    if not body.endswith("\n"):
        body += "\n"
    encoded = binascii.b2a_qp(body.encode(), quotetabs=False, istext=True, header=False)
    return head + encoded.replace(b"\n", b"\r\n")


def plain_headers(mailbox: Mailbox, now: dt.datetime) -> bytes | None:
    """The header block (CRLF, with the blank line), or None when a value needs the email
    package (quoting, encoded words or folding)."""
    domain, name, login = mailbox.domain, mailbox.name, mailbox.login
    if not (PLAIN_NAME.fullmatch(name) and DOT_ATOM.fullmatch(login)
            and DOT_ATOM.fullmatch(domain)):
        return None
    lines = [f"From: Postmaster <postmaster@{domain}>", f"To: {name} <{login}@{domain}>",
             "Subject: Welcome to your new mailbox",
             f"Date: {email.utils.format_datetime(now)}",
             f"Message-ID: {email.utils.make_msgid('welcome', domain=domain)}",
             "Auto-Submitted: auto-generated", 'Content-Type: text/plain; charset="utf-8"',
             "Content-Transfer-Encoding: quoted-printable", "MIME-Version: 1.0", "", ""]
    if any(len(line) > MAX_LINE for line in lines):
        return None
    return "\r\n".join(lines).encode("ascii")
