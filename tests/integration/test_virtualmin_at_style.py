"""Adopting a Virtualmin server whose Unix users are named ``user@domain``, over SSH.

The host (tests/testhost/virtualmin_at.py) keeps forwards in /etc/aliases under the escaped key
(``jean\\@autre.be: jean.perso@example.org``), the quoted key and Virtualmin's ``-domain`` key,
extra addresses that point at the Unix user, a disabled domain and text mailstate cannot carry.
Before the takeover Virtualmin's Postfix forwards jean's mail; after import -> validate -> plan
-> apply, real mail sent with swaks to jean@autre.be and to his extra address arrives at his
forward target, lena's (a ``-domain`` key) both in her mailbox and at hers, and the disabled
domain still refuses mail.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from ruamel.yaml import YAML

from tests.integration.conftest import RELEASE_PARAMS, require_testhost_environment
from tests.integration.mail import Cli, rcpt, run_cli, token, wait_sink, wait_until
from tests.testhost import TestHost
from tests.testhost import virtualmin_at as vmat

HOST_NAME = "vmat"


def swaks(host: TestHost, to: str, subject: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["swaks", "--server", host.ip, "--port", "25", "--local-interface", host.runner_ip,
         "--helo", "runner.test", "--from", f"s{token()}@runner.test", "--to", to,
         "--header", f"Subject: {subject}", "--body", "through the adopted server\n"],
        capture_output=True, text=True, timeout=60)


def _in_maildir(host: TestHost, user: vmat.User, needle: str) -> bool:
    maildir = host.host_path(user.home) / "Maildir"
    return any(needle in p.read_text(errors="replace")
               for sub in ("new", "cur") for p in (maildir / sub).glob("*"))


@pytest.fixture(scope="module", params=RELEASE_PARAMS)
def vhost(request: pytest.FixtureRequest, testhost_environment: None) -> Iterator[TestHost]:
    require_testhost_environment(request.param)
    with vmat.AtStyleHost(HOST_NAME, release=request.param) as host:
        yield host


@pytest.fixture(scope="module")
def adopted(vhost: TestHost, tmp_path_factory: pytest.TempPathFactory) -> tuple[TestHost, Cli]:
    host = vhost
    before = f"virtualmin {token()}"  # Virtualmin's Postfix forwards under the escaped key
    sent = swaks(host, "jean@autre.be", before)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    wait_sink(host, "jean.perso@example.org", before, timeout=30)
    repo = tmp_path_factory.mktemp("adopted") / "repo"
    imported = run_cli("import", "--from", "virtualmin", "--target", f"ssh://root@{host.ip}",
                       "--known-hosts", str(host.known_hosts_path), "--identity",
                       str(host.key_path), "--server", HOST_NAME, "--out", str(repo))
    assert imported.code == 0, imported
    print(imported)
    yaml = YAML()
    config = yaml.load((repo / "mailstate.yaml").read_text())
    config["servers"][HOST_NAME]["commands"] = {  # the test host has no systemd
        k: host.commands[k] for k in ("postfix_reload", "dovecot_reload", "postgrey_restart")}
    with (repo / "mailstate.yaml").open("w") as f:
        yaml.dump(config, f)
    assert run_cli("validate", cwd=repo).code == 0
    planned = run_cli("plan", "--detailed-exitcode", cwd=repo)
    assert planned.code == 2 and "0 to remove" in planned.stdout, planned
    applied = run_cli("apply", "--auto-approve", cwd=repo)
    assert applied.code == 0, applied
    assert run_cli("plan", "--detailed-exitcode", cwd=repo).code == 0
    return host, imported


def test_forwarded_mail_arrives_at_the_forward_target(adopted: tuple[TestHost, Cli]) -> None:
    host, imported = adopted
    lena = vmat.BY_NAME["lena@autre.be"]
    assert "ferme.be: not imported: its mail is disabled" in imported.stderr + imported.stdout
    for address, target in (("jean@autre.be", "jean.perso@example.org"),
                            ("contact@autre.be", "jean.perso@example.org"),
                            ("marc@autre.be", "marc@example.net"),
                            ("info@autre.be", "lena@example.net")):
        subject = f"to {address} {token()}"
        sent = swaks(host, address, subject)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        wait_sink(host, target, subject, timeout=30)
        if address == "info@autre.be":  # lena keeps a copy
            wait_until(lambda s=subject: _in_maildir(host, lena, s), 30, "lena's copy")


def test_the_disabled_domain_still_refuses_mail(adopted: tuple[TestHost, Cli]) -> None:
    host, _ = adopted
    for address in ("paul@ferme.be", "anyone@ferme.be"):
        code, text = rcpt(host, f"d{token()}@runner.test", address)
        assert code >= 400, (address, code, text)  # never accepted (454: relay denied)


def test_hostile_text_was_left_out_with_a_warning(adopted: tuple[TestHost, Cli]) -> None:
    _host, imported = adopted
    for text in ("&anchor@autre.be not imported", "sales:x@autre.be not imported",
                 "elsewhere.example is not carried"):
        assert text in imported.stderr + imported.stdout
