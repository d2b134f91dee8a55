"""The fast welcome mail (mailstate.files.welcome) reads exactly like render_welcome's: same headers
(the Message-ID and the transfer encoding aside), same text, one recipient; names it cannot
write plainly go the slow way, and hostile ones still name no other recipient."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstate.files.render import render_welcome
from mailstate.files.welcome import plain_headers, welcome_mail
from mailstate.model.state import Mailbox
from mailstate.model.values import check_name

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
PROTOCOLS = [("imap",), ("imap", "lmtp", "pop3"), ("lmtp",)]


def box(name: str = "Jo Smith", login: str = "jo", domain: str = "x.be",
        addresses: tuple[str, ...] = ()) -> Mailbox:
    return Mailbox(login=login, domain=domain, name=name, password="{PLAIN}x",
                   addresses=addresses, quota=3 * 1024**3)


def read(raw: bytes) -> tuple[dict[str, str], str]:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for key in msg:
        assert not msg[key].defects, (key, msg[key].defects)
    # the transfer encoding may differ (7bit or quoted-printable): the decoded text may not
    headers = {k: str(v) for k, v in msg.items()
               if k not in ("Message-ID", "Content-Transfer-Encoding")}
    assert msg["Message-ID"].endswith(f"@{msg['To'].addresses[0].domain}>")
    return headers, msg.get_content()


@pytest.mark.parametrize("protocols", PROTOCOLS)
@pytest.mark.parametrize("mailbox", [
    box(), box(name="User 3", login="cust00000003", domain="cust0000.example",
               addresses=("contact3@cust0000.example", "user3@cust0000.example")),
    box(name="A" * 40, login="first.last-2", domain="a-b.example.net"),
])
def test_a_plain_mail_reads_like_the_email_packages(mailbox: Mailbox,
                                                     protocols: tuple[str, ...]) -> None:
    assert plain_headers(mailbox, NOW) is not None  # the fast way is taken
    fast = welcome_mail(mailbox, now=NOW, protocols=protocols)
    assert read(fast) == read(render_welcome(mailbox, now=NOW, protocols=protocols))
    assert all(len(line) <= 78 for line in fast.split(b"\r\n"))
    assert fast.endswith(b"\r\n") and b"\n" not in fast.replace(b"\r\n", b"")


@pytest.mark.parametrize("name", ["Zoë Ünal", "J. Smith", "Support, evil@attacker.test",
                                  "two  spaces", " lead", "x" * 80, '"quoted"'])
def test_anything_else_goes_the_email_packages_way(name: str) -> None:
    assert plain_headers(box(name=name), NOW) is None
    assert read(welcome_mail(box(name=name), now=NOW, protocols=("imap",))) == \
        read(render_welcome(box(name=name), now=NOW, protocols=("imap",)))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
               min_size=1, max_size=80))
def test_a_welcome_mail_names_no_other_recipient(name: str) -> None:
    try:
        check_name(name)
    except ValueError:
        return
    raw = welcome_mail(box(name=name), now=NOW, protocols=("imap",))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert [a.addr_spec for a in msg["To"].addresses] == ["jo@x.be"]
    assert read(raw) == read(render_welcome(box(name=name), now=NOW, protocols=("imap",)))
