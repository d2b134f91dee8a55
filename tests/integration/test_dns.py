"""`mailstate dns` against a real authoritative server (NSD) on the test network and a real
mail server of each release: the printed zone loads, `--check` passes against it and names
each record taken away or changed, and the published MX and SRV records lead clients to the
live server (mail delivered through the MX, IMAP and POP3 greetings at the SRV targets)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.rdatatype
import pytest

from tests.integration.dns_server import NsdServer, nsd_missing, resolver, soa
from tests.integration.mail import Site, password_hash, send, token, wait_for_subject
from tests.testhost import TestHost

pytestmark = pytest.mark.integration
HOST_NAME = "dnscheck"
DOMAIN = "dnscheck.be"
ALIAS = "dnscheck.eu"
PASSWORD = "Dns-Check-Password-1"


@pytest.fixture
def nsd(host: TestHost, tmp_path: Path) -> Iterator[NsdServer]:
    missing = nsd_missing()
    if missing:
        pytest.fail(f"needs {missing} (.ci/install-debian-packages.sh)")
    server = NsdServer(host.runner_ip, tmp_path / "nsd")
    yield server
    server.stop()


def _configure(site: Site, host: TestHost, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = site.config

    def with_dns() -> dict[str, Any]:
        config = plain()
        for server in config["servers"].values():
            server["mail_host"] = host.fqdn
            server["dns"] = {"services": ["imap", "pop3"]}  # what the test hosts serve
        config["dns"] = {"ttl": 300, "dmarc": {"policy": "quarantine",
                                               "report_to": "dmarc@dnscheck.be"}}
        return config

    monkeypatch.setattr(site, "config", with_dns)


def _zones(site: Site, host: TestHost) -> dict[str, str]:
    """The zone of each domain as an operator would make it: SOA and NS, then exactly what
    `mailstate dns --format zone` printed for it; and the test network's own zone."""
    listed = site.cli("dns", "--format", "json")
    assert listed.code == 0, listed
    zones = {}
    for zone in sorted({r["zone"] for r in json.loads(listed.stdout)}):
        printed = site.cli("dns", "--format", "zone", "--domain", zone)
        assert printed.code == 0, printed
        zones[zone] = soa(zone) + printed.stdout
    zones["test"] = soa("test") + (f"ns IN A {host.runner_ip}\n"
                                   f"{host.fqdn}. IN A {host.ip}\n")
    return zones


def _greeting(ip: str, port: int) -> bytes:
    with socket.create_connection((ip, port), timeout=10) as conn:
        return conn.recv(200)


def test_published_records_pass_the_check_and_lead_to_the_server(
        site: Site, host: TestHost, nsd: NsdServer, monkeypatch: pytest.MonkeyPatch) -> None:
    _configure(site, host, monkeypatch)
    site.apply({"domain": DOMAIN, "domain_aliases": [ALIAS], "mailboxes": {
        "dnscheck": {"name": "Admin", "password": password_hash(PASSWORD)}}})
    zones = _zones(site, host)
    assert set(zones) == {DOMAIN, ALIAS, "test"}
    nsd.serve(zones)

    checked = site.cli("dns", "--check", "--resolver", host.runner_ip)
    assert checked.code == 0, checked
    lines = checked.stdout.splitlines()
    assert len(lines) == 2 * 5 and all(line.startswith("ok: ") for line in lines), lines
    assert f"ok: _dmarc.{DOMAIN} TXT v=DMARC1; p=quarantine; rua=mailto:dmarc@{DOMAIN}" in lines

    # what a sending server does: MX of the alias -> host name -> address, then SMTP there
    res = resolver(host.runner_ip)
    (mx,) = res.resolve(ALIAS + ".", dns.rdatatype.MX)
    (address,) = res.resolve(mx.exchange, dns.rdatatype.A)
    assert str(address) == host.ip
    subject = f"Through the MX {token()}"
    send(host, f"someone-{token()}@runner.test", f"dnscheck@{ALIAS}", subject)
    wait_for_subject(host, "dnscheck", PASSWORD, subject)

    # what a mail client does (RFC 6186): SRV -> host and port -> the service's greeting
    for service, greeting in (("imap", b"* OK"), ("pop3", b"+OK")):
        (srv,) = res.resolve(f"_{service}._tcp.{DOMAIN}.", dns.rdatatype.SRV)
        (target,) = res.resolve(srv.target, dns.rdatatype.A)
        assert _greeting(str(target), srv.port).startswith(greeting), service


def test_check_names_each_record_missing_or_wrong(
        site: Site, host: TestHost, nsd: NsdServer, monkeypatch: pytest.MonkeyPatch) -> None:
    _configure(site, host, monkeypatch)
    site.apply({"domain": DOMAIN, "domain_aliases": [ALIAS], "mailboxes": {
        "dnscheck": {"name": "Admin", "password": password_hash(PASSWORD)}}})
    zones = _zones(site, host)
    zones[DOMAIN] = "".join(line + "\n" for line in zones[DOMAIN].splitlines()
                            if not line.startswith(f"_dmarc.{DOMAIN}."))
    zones[ALIAS] = zones[ALIAS].replace(f"IN MX   10 {host.fqdn}.", "IN MX   10 elsewhere.test.")
    assert "elsewhere.test" in zones[ALIAS]
    nsd.serve(zones)

    checked = site.cli("dns", "--check", "--resolver", host.runner_ip)
    assert checked.code == 1, checked
    bad = [line for line in checked.stdout.splitlines() if not line.startswith("ok: ")]
    assert bad == [f"missing: _dmarc.{DOMAIN} TXT v=DMARC1; p=quarantine; "
                   f"rua=mailto:dmarc@{DOMAIN}",
                   f"wrong: {ALIAS} MX 10 {host.fqdn} (found: 10 elsewhere.test)"], checked
    assert "2 of 10 records missing or wrong in 2 domains" in checked.stderr

    # nothing answers there: unanswered, exit 1, no traceback
    nsd.stop()
    silent = site.cli("dns", "--check", "--resolver", host.runner_ip, "--domain", DOMAIN,
                      "--timeout", "0.5")
    assert silent.code == 1, silent
    assert all(line.startswith("unanswered: ") for line in silent.stdout.splitlines()), silent
    assert "Traceback" not in silent.output
