"""Vacation (automatic replies) after `mailstate apply`, proven with real mail: one reply per
sender per interval, nothing outside the dates, nothing to lists, bulk or automatic mail, and
still a reply while the mailbox forwards without keeping a copy.

Replies leave the host with MAIL FROM:<> and are caught by the host's SMTP sink. Before a test
asserts that no reply came, it waits until the message is in the mailbox and the host's queue
is empty: a reply, if Sieve had sent one, would be in the sink by then."""

from __future__ import annotations

import time

import pytest

from tests.integration.mail import (
    Site,
    password_hash,
    send,
    settle,
    sink_for,
    subjects,
    token,
    wait_for_subject,
    wait_sink,
)
from tests.testhost import SinkMessage, TestHost
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
HOST_NAME = "vacation"

PW = "Vacation-Password-1"
OUT = "outside.example"
INTERVAL = 4  # seconds between two replies to one sender
AWAY = "Out of office"


def box(name: str, **fields: object) -> dict[str, object]:
    return {"name": name, "password": password_hash(PW), **fields}


def vacation(**fields: object) -> dict[str, object]:
    return {"subject": AWAY, "message": "I am away.\n", **fields}


DOMAIN = {
    "domain": "vacation.be",
    "domain_aliases": ["vacation.eu"],
    "mailboxes": {
        "vacation": box("Administrator"),
        "vacation0001": box("Short interval", addresses=["info"],
                            vacation=vacation(interval=f"{INTERVAL}s")),
        "vacation0002": box("Was away", vacation=vacation(start="2020-01-01", end="2020-01-31")),
        "vacation0003": box("Will be away", vacation=vacation(start="2099-01-01")),
        "vacation0004": box("Away now", vacation=vacation(
            interval="1h", start="2020-01-01", end="2099-12-31")),
        "vacation0005": box("Away, mail forwarded", vacation=vacation(interval="1h"),
                            forward={"to": [f"deputy@{OUT}"], "keep_copy": False}),
    },
}


@pytest.fixture(scope="module")
def site(host: TestHost, tmp_path_factory: pytest.TempPathFactory) -> Site:
    site = Site.create(host, tmp_path_factory.mktemp("repo"))
    site.apply(DOMAIN)
    return site


def sender() -> str:
    return f"sender-{token()}@{OUT}"


def replies(host: TestHost, to: str) -> list[SinkMessage]:
    return [m for m in sink_for(host, to) if m.mail_from == ""]


def wait_reply(host: TestHost, to: str) -> SinkMessage:
    reply = wait_sink(host, to, AWAY)
    assert reply.mail_from == ""
    assert str(reply.message["Auto-Submitted"]).startswith("auto-replied")
    return reply


def deliver_and_settle(host: TestHost, frm: str, to: str, login: str, **kw: object) -> None:
    """Send, wait until it is in the mailbox and nothing is left in the queue."""
    subject = f"mail {token()}"
    send(host, frm, to, subject, **kw)  # type: ignore[arg-type]
    wait_for_subject(host, login, PW, subject)
    settle(host)


def test_one_reply_per_interval(site: Site, host: TestHost) -> None:
    frm = sender()
    send(host, frm, "info@vacation.be", f"first {token()}")
    wait_reply(host, frm)
    first_at = time.monotonic()

    deliver_and_settle(host, frm, "info@vacation.be", "vacation0001")
    assert time.monotonic() - first_at < INTERVAL, "too slow to test the interval"
    assert len(replies(host, frm)) == 1

    # The interval runs from the first reply; Sieve counts whole seconds.
    time.sleep(max(0.0, first_at + INTERVAL + 1.2 - time.monotonic()))
    send(host, frm, "info@vacation.be", f"third {token()}")
    wait_until_replies(host, frm, 2)
    settle(host)
    assert len(replies(host, frm)) == 2


def wait_until_replies(host: TestHost, to: str, count: int, timeout: float = 20) -> None:
    wait_until(lambda: [str(m.message["Subject"]) for m in replies(host, to)], timeout,
               f"{count} replies to {to} in the sink", until=lambda got: len(got) >= count)


def test_reply_to_mail_for_every_address_of_the_mailbox(site: Site, host: TestHost) -> None:
    """Sieve answers only mail addressed to the mailbox: extra addresses and the domain
    alias must be among its :addresses."""
    for address in ("vacation0001@vacation.be", "info@vacation.eu", "vacation0001@vacation.eu"):
        frm = sender()
        send(host, frm, address, f"to {address} {token()}")
        wait_reply(host, frm)


def test_no_reply_outside_the_dates(site: Site, host: TestHost) -> None:
    past, future = sender(), sender()
    deliver_and_settle(host, past, "vacation0002@vacation.be", "vacation0002")
    deliver_and_settle(host, future, "vacation0003@vacation.be", "vacation0003")
    assert replies(host, past) == []
    assert replies(host, future) == []
    # Between its dates a vacation does answer.
    inside = sender()
    send(host, inside, "vacation0004@vacation.be", f"inside {token()}")
    wait_reply(host, inside)


@pytest.mark.parametrize(
    "headers",
    [
        {"List-Id": "<news.lists.outside.example>"},
        {"List-Unsubscribe": "<mailto:leave@lists.outside.example>"},
        {"Precedence": "bulk"},
        {"Precedence": "list"},
        {"Auto-Submitted": "auto-generated"},
        {"Auto-Submitted": "auto-replied"},
    ],
    ids=lambda h: "-".join(f"{k}:{v}" for k, v in h.items()),
)
def test_no_reply_to_lists_bulk_or_automatic_mail(
    site: Site, host: TestHost, headers: dict[str, str]
) -> None:
    frm = sender()
    deliver_and_settle(host, frm, "vacation0004@vacation.be", "vacation0004", headers=headers)
    assert replies(host, frm) == []


def test_reply_to_auto_submitted_no(site: Site, host: TestHost) -> None:
    frm = sender()
    send(host, frm, "vacation0004@vacation.be", f"human {token()}",
         headers={"Auto-Submitted": "no"})
    wait_reply(host, frm)


def test_reply_while_forwarding_without_a_copy(site: Site, host: TestHost) -> None:
    frm = sender()
    subject = f"forwarded {token()}"
    send(host, frm, "vacation0005@vacation.be", subject)
    forwarded = wait_sink(host, f"deputy@{OUT}", subject)
    assert forwarded.message["Subject"] == subject
    wait_reply(host, frm)
    settle(host)
    assert len(replies(host, frm)) == 1
    assert subject not in subjects(host, "vacation0005", PW)
