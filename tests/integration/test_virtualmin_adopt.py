"""Adopting a Virtualmin server on a real test host: import, takeover, rollback.

The host is laid out as Virtualmin leaves a server (tests/testhost/virtualmin.py) and delivers
as Virtualmin's Postfix does, into the users' ~/Maildir; once on Debian 12 (Dovecot 2.3) and
once on Debian 13 (Dovecot 2.4). Then: import over SSH -> validate ->
plan (the takeover only) -> apply; every address delivers where it did, users log in over IMAP
(and POP3) with their old names and passwords and find their old mail, the autoreply answers
once per interval, greylisting is as before, a second plan shows nothing, and rollback gives
the server back to Virtualmin's delivery.
"""

from __future__ import annotations

import contextlib
import poplib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.integration.conftest import RELEASE_PARAMS, require_testhost_environment
from tests.integration.mail import (
    Cli,
    imap,
    rcpt,
    run_cli,
    send,
    settle,
    sink_for,
    token,
    wait_sink,
    wait_until,
)
from tests.testhost import TestHost
from tests.testhost import virtualmin as vm

HOST_NAME = "vmin"
LIVE = [u for u in vm.USERS if u.name != "oud.monsite"]  # oud's password is locked


@dataclass
class Adoption:
    host: TestHost
    repo: Path
    imported: Cli
    validated: Cli
    planned: Cli
    applied: Cli


def _maildir_has(host: TestHost, user: vm.User, needle: str) -> bool:
    maildir = host.host_path(user.home) / "Maildir"
    return any(needle in p.read_text(errors="replace")
               for sub in ("new", "cur") for p in (maildir / sub).glob("*"))


def _wait_maildir(host: TestHost, user: vm.User, needle: str) -> None:
    wait_until(lambda: _maildir_has(host, user, needle), 30, f"{needle} in {user.name}'s Maildir")


# Where a Virtualmin host could leak onto the machine: its private /etc/webmin, /home and
# aliases, and the mount point of /var/vmail.
WATCHED = ("/etc/webmin", "/home", "/var/vmail", "/etc/aliases", "/etc/aliases.db")


def _machine_paths() -> dict[str, object]:
    """What the machine itself has at the watched paths (entries of a directory, a file's
    size and modification time)."""
    seen: dict[str, object] = {}
    for name in WATCHED:
        path = Path(name)
        if path.is_dir():
            seen[name] = sorted(p.name for p in path.iterdir())
        elif path.exists():
            stat = path.stat()
            seen[name] = (stat.st_size, stat.st_mtime_ns)
    return seen


@pytest.fixture(scope="module", params=RELEASE_PARAMS)
def vhost(request: pytest.FixtureRequest, testhost_environment: None) -> Iterator[TestHost]:
    """The Virtualmin server, once per Debian release (12: Dovecot 2.3, 13: Dovecot 2.4)."""
    require_testhost_environment(request.param)
    before = _machine_paths()
    with vm.VirtualminHost(HOST_NAME, release=request.param) as host:
        yield host
    assert _machine_paths() == before, "the test host left something on the machine"


@pytest.fixture(scope="module")
def adoption(vhost: TestHost, tmp_path_factory: pytest.TempPathFactory) -> Adoption:
    host = vhost
    subject = f"before {token()}"  # Virtualmin's own delivery works on this host
    send(host, "someone@runner.test", "kees@bakkerij.be", subject)
    _wait_maildir(host, vm.BY_NAME["kees"], subject)
    repo = tmp_path_factory.mktemp("adopted") / "repo"
    imported = run_cli("import", "--from", "virtualmin", "--target", f"ssh://root@{host.ip}",
                       "--known-hosts", str(host.known_hosts_path), "--identity",
                       str(host.key_path), "--server", HOST_NAME, "--out", str(repo))
    assert imported.code == 0 and "mailbox(es)" in imported.stdout, imported
    print(imported)
    yaml = YAML()
    config = yaml.load((repo / "mailstate.yaml").read_text())
    config["servers"][HOST_NAME]["commands"] = {  # the test host has no systemd
        k: host.commands[k] for k in ("postfix_reload", "dovecot_reload", "postgrey_restart")}
    with (repo / "mailstate.yaml").open("w") as f:
        yaml.dump(config, f)
    validated = run_cli("validate", cwd=repo)
    planned = run_cli("plan", "--detailed-exitcode", cwd=repo)
    applied = run_cli("apply", "--auto-approve", cwd=repo)
    return Adoption(host, repo, imported, validated, planned, applied)


def test_import_validates_and_the_takeover_is_a_plan(adoption: Adoption) -> None:
    assert adoption.validated.code == 0, adoption.validated
    assert adoption.planned.code == 2, adoption.planned
    plan = adoption.planned.stdout
    assert "0 to remove" in plan and "+ mailbox jan.monsite" in plan
    assert "virtual_alias_maps: hash:/etc/postfix/virtual -> " in plan
    assert adoption.applied.code == 0, adoption.applied
    assert "oud.monsite not imported" in adoption.imported.stderr


def test_every_address_delivers_where_it_did(adoption: Adoption) -> None:
    host = adoption.host
    for address, where in vm.EXPECTED.items():
        subject, sender = f"to {address} {token()}", f"s{token()}@runner.test"
        send(host, sender, address, subject)
        for place in vm.CHANGED_BY_MAILSTATE.get(address, where):
            if place in vm.BY_NAME:
                _wait_maildir(host, vm.BY_NAME[place], subject)
            elif place == "reply":
                assert wait_sink(host, sender, "Out of office", timeout=30).mail_from == ""
            else:
                wait_sink(host, place, subject, timeout=30)


@pytest.mark.parametrize("user", LIVE, ids=lambda u: u.name)
def test_old_login_names_and_passwords_find_the_old_mail(adoption: Adoption,
                                                         user: vm.User) -> None:
    with imap(adoption.host, user.name, user.password) as client:
        client.select("INBOX", readonly=True)
        _, found = client.search(None, "HEADER", "Message-ID", vm.OLD_MESSAGES[user.name])
        assert found[0].split(), f"{user.name}: the old message is not in the INBOX"


def test_pop3_logins_with_the_old_names(adoption: Adoption) -> None:
    host = adoption.host
    protocols = host.exec(["doveconf", "-h", "protocols"]).stdout.split()
    if "pop3" not in protocols:
        pytest.skip("this host's Dovecot serves no POP3 (dovecot-pop3d not installed)")
    for user in LIVE:
        client = poplib.POP3(host.ip, 110, timeout=30)
        try:
            client.user(user.name)
            client.pass_(user.password)
            count, _size = client.stat()
            assert count >= 1, user.name
        finally:
            with contextlib.suppress(Exception):
                client.quit()


def test_autoreply_answers_once_per_interval(adoption: Adoption) -> None:
    host, sender = adoption.host, f"twice{token()}@runner.test"
    send(host, sender, "els@monsite.be", "first")
    wait_sink(host, sender, "", timeout=30)
    send(host, sender, "els@monsite.be", "second")
    _wait_maildir(host, vm.BY_NAME["els.monsite"], "Subject: second")
    settle(host)
    assert len(sink_for(host, sender)) == 1  # Reply-Period 600 s became a 10m interval


def test_greylisting_behaves_as_before(adoption: Adoption) -> None:
    host = adoption.host
    code, text = rcpt(host, f"g{token()}@runner.test", "monsite@monsite.be",
                      source=host.runner_ip2)
    assert code == 450 and "reylist" in text, (code, text)
    code, text = rcpt(host, f"g{token()}@runner.test", "kees@bakkerij.be",
                      source=host.runner_ip2)
    assert code == 250, (code, text)  # bakkerij.be was in postgrey's recipient whitelist


def test_kept_homes_are_in_the_quota_report(adoption: Adoption, tmp_path: Path) -> None:
    """Dovecot keeps kees's quota count in the home Virtualmin made; a plan with a quota below
    it (in a copy of the repository) says so, read over SSH like any mailbox's."""
    host, kees = adoption.host, vm.BY_NAME["kees"]
    subject = f"counted {token()}"
    send(host, f"q{token()}@runner.test", "kees@bakkerij.be", subject,
         body=("0123456789" * 7 + "\n") * 20_000)  # 1.4 MiB
    _wait_maildir(host, kees, subject)
    assert host.host_path(kees.home + "/Maildir/maildirsize").exists()
    repo = tmp_path / "repo"
    shutil.copytree(adoption.repo, repo)
    domain = repo / "domains/bakkerij.be.yaml"
    domain.write_text(domain.read_text().replace("    name: Kees\n",
                                                 "    name: Kees\n    quota: 1M\n"))
    planned = run_cli("plan", cwd=repo)
    assert "mailbox kees@bakkerij.be holds" in planned.stdout + planned.stderr, planned
    assert "more than its quota 1M" in planned.stdout + planned.stderr, planned


def test_second_plan_shows_no_changes(adoption: Adoption) -> None:
    again = run_cli("plan", "--detailed-exitcode", cwd=adoption.repo)
    assert again.code == 0 and "No changes" in again.stdout, again


def test_rollback_gives_delivery_back_to_virtualmin(adoption: Adoption) -> None:
    host = adoption.host
    rolled = run_cli("rollback", "--auto-approve", cwd=adoption.repo)
    assert rolled.code == 0, rolled
    maps = host.exec(["postconf", "-h", "virtual_alias_maps"]).stdout.strip()
    assert maps == "hash:/etc/postfix/virtual"
    assert host.exec(["postconf", "-h", "virtual_transport"]).stdout.strip() == "virtual"
    for address, user in (("kees@bakkerij.be", "kees"), ("info@monsite.be", "jan.monsite")):
        subject = f"after rollback {token()}"
        send(host, "someone@runner.test", address, subject)
        _wait_maildir(host, vm.BY_NAME[user], subject)
    assert host.host_path("/etc/postfix/virtual").exists()
