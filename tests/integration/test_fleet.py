"""A fleet over SSH: several real test hosts planned and applied at once, one server that
cannot be reached and one whose check fails; the others are applied and receive mail. And SSH
as operators configure it: a host alias and a ProxyJump from an OpenSSH client config."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailstate import Manager
from tests.integration.mail import Site, dump_yaml, password_hash, rcpt, run_cli, token
from tests.testhost import TestHost

PW = "Fleet-Password-1"
BROKEN = "/etc/dovecot/conf.d/98-broken-by-hand.conf"
STAMP = re.compile(r"^\d\d:\d\d:\d\d (\S+): (\S+)")


def server_entry(host: TestHost, root: Path) -> dict[str, Any]:
    """What the mail tests' Site writes for a host, as one server of a larger repository."""
    [entry] = Site(host, root).config()["servers"].values()
    return entry


def domain(name: str, server: str) -> dict[str, Any]:
    login = name.split(".")[0]
    return {"domain": name, "account": "fleet", "server": server,
            "mailboxes": {"fleet": {"name": "Admin", "password": password_hash(PW),
                                    "welcome": False},
                          login: {"name": login.capitalize(), "password": password_hash(PW),
                                  "welcome": False}}}


def write_repo(root: Path, servers: dict[str, dict[str, Any]], **extra: Any) -> None:
    (root / "domains").mkdir(parents=True, exist_ok=True)
    config = {"servers": servers, "plans": {"fleet": {"mailboxes": 100, "mail_quota": None,
                                                      "domains": None}},
              "accounts": {"fleet": {"plan": "fleet", "domains": [f"{n}.be" for n in servers]}},
              **extra}
    (root / "mailstate.yaml").write_text(dump_yaml(config))
    for name in servers:
        path = root / "domains" / f"{name}.be.yaml"
        path.write_text(dump_yaml(domain(f"{name}.be", name)))


@pytest.fixture(scope="module")
def hosts(testhost_environment: None) -> Iterator[list[TestHost]]:
    started: list[TestHost] = []
    try:
        for name in ("fleeta", "fleetb", "fleetc"):
            started.append(TestHost(name).start())
        yield started
    finally:
        for host in reversed(started):
            host.stop()


def sender() -> str:
    return f"sender-{token()}@outside.example"


def test_a_fleet_with_an_unreachable_and_a_failing_server(
        hosts: list[TestHost], tmp_path: Path) -> None:
    a, b, c = hosts
    servers = {name: server_entry(host, tmp_path) for name, host in
               (("alpha", a), ("beta", b), ("gamma", c))}
    # delta: a server that does not answer (nothing listens on that port)
    servers["delta"] = {**server_entry(a, tmp_path), "target": f"ssh://root@{a.ip}:2"}
    write_repo(tmp_path, servers)
    c.exec(["tee", BROKEN], input="this is { not dovecot\n")
    try:
        result = run_cli("apply", "--auto-approve", "--parallel", "4", cwd=tmp_path)
    finally:
        c.exec(["rm", "-f", BROKEN])
    assert result.code == 1, result
    assert "Traceback" not in result.output and "[Errno None]" not in result.output
    err = result.stderr
    assert f"error: delta: ssh://root@{a.ip}:2: cannot connect to {a.ip} port 2" in err, err
    assert "error: gamma: failed (a check on the server failed; nothing was changed)" in err
    assert "doveconf rejected" in err
    assert "apply failed on 2 of 4 servers: delta, gamma" in err
    # piped: plain timestamped lines per server and step, never a control code
    steps = {(m[1], m[2]) for m in map(STAMP.match, err.splitlines()) if m}
    for name in ("alpha", "beta"):
        assert {(name, "connecting"), (name, "reading"), (name, "planned"),
                (name, "uploading"), (name, "checking"), (name, "reloading"),
                (name, "done")} <= steps, steps
    assert "\x1b" not in result.output
    # the servers that worked are applied, and their results came as they finished
    assert "alpha: generation" in result.stdout and "beta: generation" in result.stdout
    assert rcpt(a, sender(), "alpha@alpha.be")[0] == 250
    assert rcpt(b, sender(), "beta@beta.be")[0] == 250
    assert rcpt(c, sender(), "gamma@gamma.be")[0] >= 400  # nothing changed on gamma

    plan = run_cli("plan", "--detailed-exitcode", cwd=tmp_path)
    assert plan.code == 1, plan  # delta is still unreachable: an error wins over changes
    assert "Server gamma" in plan.stdout and "+ mailbox gamma" in plan.stdout
    # narrowed to the servers that can be reached, the fixed gamma is applied
    again = run_cli("apply", "--auto-approve", "--server", "gamma", "--server", "alpha",
                    cwd=tmp_path)
    assert again.code == 0, again
    assert rcpt(c, sender(), "gamma@gamma.be")[0] == 250
    done = run_cli("plan", "--detailed-exitcode", "--server", "alpha", "--server", "beta",
                   "--server", "gamma", cwd=tmp_path)
    assert done.code == 0, done


def test_the_library_plans_and_applies_a_fleet_over_ssh(
        hosts: list[TestHost], tmp_path: Path) -> None:
    a, b, _ = hosts
    write_repo(tmp_path, {"libone": server_entry(a, tmp_path),
                          "libtwo": server_entry(b, tmp_path)})
    seen: list[tuple[str, str]] = []
    manager = Manager(tmp_path, progress=lambda server, step, _: seen.append((server, step)))
    with manager.plan() as fleet:
        # the hosts still serve the previous test's domains, which this repository drops
        manager.apply(fleet)
        assert {n: "apply with --force" in e for n, e in fleet.errors.items()} == \
            {"libone": True, "libtwo": True}
    with manager.plan() as fleet:
        assert fleet.ok, fleet.errors
        assert fleet.plan.has_changes
        manager.apply(fleet, force=True)
        assert fleet.ok, fleet.errors
        # one connection per server, from the read to the apply: 1 read + 1 to apply
        assert [s.prepared.transport.round_trips for s in fleet.servers] == [2, 2]
    assert ("libone", "done") in seen and ("libtwo", "done") in seen
    assert rcpt(a, sender(), "libone@libone.be")[0] == 250
    with Manager(tmp_path).plan() as after:
        assert after.exit_code(detailed=True) == 0


def test_ssh_config_aliases_and_proxyjump_are_honoured(
        hosts: list[TestHost], tmp_path: Path) -> None:
    a, b, _ = hosts
    # b reached as an alias (HostName, User, IdentityFile from the config); a reached through
    # itself as a jump host (ProxyJump), to its own loopback address
    known = tmp_path / "known_hosts"
    lines = a.known_hosts_path.read_text().splitlines() + \
        b.known_hosts_path.read_text().splitlines()
    loopback = [f"127.0.0.1 {line.split(' ', 1)[1]}" for line in
                a.known_hosts_path.read_text().splitlines() if line.strip()]
    known.write_text("\n".join(lines + loopback) + "\n")
    (tmp_path / "ssh_config").write_text(
        f"Host mx-beta\n  HostName {b.ip}\n  User root\n  IdentityFile {b.key_path}\n"
        "  ServerAliveInterval 5\n"
        f"Host behind-alpha\n  HostName 127.0.0.1\n  IdentityFile {a.key_path}\n"
        f"  ProxyJump root@{a.ip}\n"
        f"Host {a.ip}\n  IdentityFile {a.key_path}\n")
    servers = {}
    for name, host, target in (("viaalias", b, "ssh://mx-beta"),
                               ("viajump", a, "ssh://behind-alpha")):
        entry = server_entry(host, tmp_path)
        entry.pop("identity")
        servers[name] = {**entry, "target": target, "known_hosts": str(known)}
    write_repo(tmp_path, servers, ssh_config="ssh_config")
    result = run_cli("apply", "--auto-approve", "--force", cwd=tmp_path)  # drops libone/two
    assert result.code == 0, result
    assert rcpt(b, sender(), "viaalias@viaalias.be")[0] == 250
    assert rcpt(a, sender(), "viajump@viajump.be")[0] == 250
    # an unknown alias is a clear error naming the server
    (tmp_path / "ssh_config").write_text("Host mx-beta\n  HostName no-such-host.invalid\n")
    failed = run_cli("plan", "--server", "viaalias", cwd=tmp_path)
    assert failed.code == 1, failed
    assert "error: viaalias: ssh://mx-beta: cannot resolve the host name no-such-host.invalid" \
        in failed.stderr, failed

