"""Mailbox quota after `mailstate apply`: Dovecot refuses a message that does not fit (Postfix
has already accepted it over SMTP, so the sender gets a bounce), and a quota raised in YAML
takes effect with the next apply."""

from __future__ import annotations

import pytest

from tests.integration.mail import (
    Site,
    password_hash,
    send,
    settle,
    subjects,
    token,
    wait_for_subject,
    wait_sink,
)
from tests.testhost import TestHost

pytestmark = pytest.mark.integration
HOST_NAME = "quota"

PW = "Quota-Password-1"
BIG = "x" * 76 + "\n"  # one line; 20,000 of them are about 1.5 MiB


def domain(quota: str) -> dict[str, object]:
    return {
        "domain": "quota.be",
        "mailboxes": {
            "quota": {"name": "Administrator", "password": password_hash(PW)},
            "quota0001": {"name": "Small", "password": password_hash(PW), "quota": quota},
        },
    }


def test_over_quota_is_refused_until_the_quota_is_raised(site: Site, host: TestHost) -> None:
    site.apply(domain("1M"))
    frm = f"big-{token()}@outside.example"
    too_big = f"too big {token()}"
    send(host, frm, "quota0001@quota.be", too_big, body=BIG * 20_000)

    bounce = wait_sink(host, frm)
    assert bounce.mail_from == ""
    text = bounce.data.decode("utf-8", "replace")
    assert "5.2.2" in text and "Quota exceeded" in text, text[:2000]
    settle(host)
    assert too_big not in subjects(host, "quota0001", PW)
    # Small mail still fits.
    small = f"small {token()}"
    send(host, frm, "quota0001@quota.be", small)
    wait_for_subject(host, "quota0001", PW, small)

    site.apply(domain("10M"))
    fits = f"fits now {token()}"
    send(host, frm, "quota0001@quota.be", fits, body=BIG * 20_000)
    wait_for_subject(host, "quota0001", PW, fits)
    with_quota = host.exec(["doveadm", "quota", "get", "-u", "quota0001"]).stdout
    assert "10240" in with_quota, with_quota

    # The mailbox now holds about 1.5 MiB: planning a quota of 1M again warns before applying.
    site.write_domain(domain("1M"))
    plan = site.plan()
    assert plan.code == 0, plan
    assert "mailbox quota0001@quota.be holds" in plan.output, plan.output
    assert "more than its quota 1M" in plan.output, plan.output

