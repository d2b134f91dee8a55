"""Greylisting after `mailstate apply`: postgrey with a short delay, the runner's first address
whitelisted, the second not. The greylist database lives as long as the host: every case uses
its own sender address, so no triplet is ever known before a test."""

from __future__ import annotations

import time

import pytest

from tests.integration.mail import Site, password_hash, token, try_send, wait_for_subject
from tests.testhost import TestHost

pytestmark = pytest.mark.integration
HOST_NAME = "greylist"

PW = "Grey-Password-1"
DELAY = 5  # seconds; postgrey's --delay


def box(name: str) -> dict[str, object]:
    return {"name": name, "password": password_hash(PW)}


@pytest.fixture(scope="module")
def site(host: TestHost, tmp_path_factory: pytest.TempPathFactory) -> Site:
    site = Site.create(host, tmp_path_factory.mktemp("repo"))
    site.greylisting = {"delay": f"{DELAY}s", "whitelist_recipients": ["vip@grey.be"]}
    site.apply(
        {"domain": "grey.be", "mailboxes": {"grey": box("Administrator")},
         "aliases": {"vip": ["grey"]}},
        {"domain": "nogrey.be", "greylisting": False, "domain_aliases": ["nogrey.eu"],
         "mailboxes": {"nogrey": box("Administrator")}},
    )
    return site


def sender() -> str:
    return f"grey-{token()}@outside.example"


def test_unknown_triplet_is_greylisted_then_accepted_after_the_delay(
    site: Site, host: TestHost
) -> None:
    frm, subject = sender(), f"greylisted {token()}"
    code, text = try_send(host, frm, "grey@grey.be", subject, source=host.runner_ip2)
    first_try = time.monotonic()
    assert code == 450 and "Greylisted" in text, (code, text)

    code, text = try_send(host, frm, "grey@grey.be", subject, source=host.runner_ip2)
    assert code == 450, f"a retry before the delay must be greylisted too: {code} {text}"

    time.sleep(max(0.0, first_try + DELAY + 1 - time.monotonic()))
    code, text = try_send(host, frm, "grey@grey.be", subject, source=host.runner_ip2)
    assert code == 250, (code, text)
    wait_for_subject(host, "grey", PW, subject)


@pytest.mark.parametrize("address", ["nogrey@nogrey.be", "nogrey@nogrey.eu"])
def test_domain_without_greylisting_accepts_at_once(
    site: Site, host: TestHost, address: str
) -> None:
    subject = f"not greylisted {token()}"
    code, text = try_send(host, sender(), address, subject, source=host.runner_ip2)
    assert code == 250, (code, text)
    wait_for_subject(host, "nogrey", PW, subject)


def test_whitelisted_client_passes_at_once(site: Site, host: TestHost) -> None:
    subject = f"whitelisted client {token()}"
    code, text = try_send(host, sender(), "grey@grey.be", subject, source=host.runner_ip)
    assert code == 250, (code, text)
    wait_for_subject(host, "grey", PW, subject)


def test_whitelisted_recipient_passes_at_once_others_at_its_domain_do_not(
    site: Site, host: TestHost
) -> None:
    subject = f"whitelisted recipient {token()}"
    code, text = try_send(host, sender(), "vip@grey.be", subject, source=host.runner_ip2)
    assert code == 250, (code, text)
    wait_for_subject(host, "grey", PW, subject)
    code, text = try_send(host, sender(), "grey@grey.be", subject, source=host.runner_ip2)
    assert code == 450, (code, text)



@pytest.mark.parametrize("address", ["gery@grey.be", "grey@nogrey.be"])
def test_unknown_recipient_is_refused_before_greylisting(
    site: Site, host: TestHost, address: str
) -> None:
    """A typo from an unknown client gets 550 in the first session, not 450 and a wait; a valid
    recipient of the same session is still greylisted."""
    frm = sender()
    code, text = try_send(host, frm, address, f"typo {token()}", source=host.runner_ip2)
    assert code == 550, (code, text)
    assert "Greylisted" not in text, text
    code, text = try_send(host, frm, "grey@grey.be", f"valid {token()}", source=host.runner_ip2)
    assert code == 450 and "Greylisted" in text, (code, text)
