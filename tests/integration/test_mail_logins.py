"""Logins after `mailstate apply`: a mailbox logs in as its login or as login@ one of its own
domains (the domain and its domain aliases), over IMAP and POP3; any other domain part is
refused, another hosted domain's included. Delivery (LMTP looks users up by login) is
unchanged."""

from __future__ import annotations

import pytest

from tests.integration.mail import (
    LoginFailed,
    Site,
    can_login,
    login_refused,
    password_hash,
    pop3_read,
    send,
    token,
    wait_for_subject,
)
from tests.testhost import TestHost

pytestmark = pytest.mark.integration
HOST_NAME = "logins"

PW = "Logins-Password-1"


@pytest.fixture(scope="module")
def site(host: TestHost, tmp_path_factory: pytest.TempPathFactory) -> Site:
    site = Site.create(host, tmp_path_factory.mktemp("repo"))
    site.apply(
        {"domain": "logins.be", "domain_aliases": ["logins.eu"],
         "mailboxes": {"logins": {"name": "Admin", "password": password_hash(PW)},
                       "logins0001": {"name": "Jo", "password": password_hash(PW)}}},
        {"domain": "other.be",
         "mailboxes": {"other": {"name": "Other", "password": password_hash(PW)}}},
    )
    return site


@pytest.mark.parametrize("name", ["logins0001", "logins0001@logins.be", "logins0001@logins.eu",
                                  "Logins0001@LOGINS.be"])
def test_login_and_login_at_its_own_domains_log_in(site: Site, host: TestHost,
                                                   name: str) -> None:
    assert can_login(host, name, PW), name


@pytest.mark.parametrize("name", ["logins0001@not-logins.test", "logins0001@other.be",
                                  "logins0001@logins.be.evil.test", "other@logins.be"])
def test_any_other_domain_part_is_refused(site: Site, host: TestHost, name: str) -> None:
    assert login_refused(host, name, PW), name


def test_pop3_takes_the_same_names(site: Site, host: TestHost) -> None:
    assert pop3_read(host, "logins0001@logins.eu", PW).listing is not None
    with pytest.raises(LoginFailed):
        pop3_read(host, "logins0001@other.be", PW, source=host.runner_ip2)


def test_mail_still_arrives_at_every_address(site: Site, host: TestHost) -> None:
    for rcpt in ("logins0001@logins.be", "logins0001@logins.eu"):
        subject = f"to {rcpt} {token()}"
        send(host, f"s-{token()}@outside.example", rcpt, subject)
        wait_for_subject(host, "logins0001@logins.be", PW, subject)
