"""The new-domain notice on a real server: sent once to the account's contact, naming the
services the server's Dovecot really offers, at the host name Postfix knows."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.mail import Site, password_hash, settle, sink_for, wait_sink
from tests.testhost import TestHost

pytestmark = pytest.mark.integration
HOST_NAME = "notice"
CONTACT = "owner@outside.example"


def test_a_new_domain_tells_the_contact_once(site: Site, host: TestHost,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    plain = site.config

    def with_contact() -> dict[str, Any]:
        config = plain()
        config["accounts"]["notice"]["contact"] = CONTACT
        return config

    monkeypatch.setattr(site, "config", with_contact)
    site.apply({"domain": "notice.be", "mailboxes": {
        "notice": {"name": "Admin", "password": password_hash("Notice-Password-1")}}})
    mail = wait_sink(host, CONTACT, "Mail domain notice.be is set up").message
    body = mail.get_content()
    protocols = host.exec("doveconf -h protocols").stdout.split()
    hostname = host.exec("postconf -h myhostname").stdout.strip()
    assert "Domain name:              notice.be" in body
    assert "imap" in protocols and f"IMAP server (receiving):  {hostname}, port" in body
    assert ("POP3 server" in body) == ("pop3" in protocols)
    assert "$6$" not in body and "Notice-Password-1" not in body

    site.apply()  # again: nothing new, no second notice
    settle(host)
    assert len(sink_for(host, CONTACT, "Mail domain notice.be")) == 1
