"""How `mailstate apply` treats a real server over SSH: a second apply changes nothing at all,
the number of SSH round trips does not grow with the number of mailboxes, unknown or changed
host keys stop the run, and a failed check or a failed reload leaves the previous files in
place with mail still flowing."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from mailstate.apply import apply_server
from mailstate.config.validation import run as validate_run
from mailstate.engine.prepare import prepare
from mailstate.server.ssh import SSHTransport
from tests.integration.mail import (
    SERVER,
    Site,
    dump_yaml,
    password_hash,
    rcpt,
    run_cli,
    send,
    token,
    wait_for_subject,
)
from tests.testhost import TestHost
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
HOST_NAME = "apply"

PW = "Apply-Password-1"
STATE_DIR = "/var/lib/mailstate"
DB_SUFFIX = ".db"  # Debian's Postfix: default_database_type = hash


def box(name: str, **fields: object) -> dict[str, object]:
    return {"name": name, "password": password_hash(PW), **fields}


def sender() -> str:
    return f"sender-{token()}@outside.example"


# --- what is on the server ------------------------------------------------------------------
def managed_paths(host: TestHost) -> list[str]:
    """Every file mailstate wrote (its manifest), the postmap outputs, main.cf, the manifest."""
    manifest = json.loads(host.host_path(f"{STATE_DIR}/manifest.json").read_text())
    paths = [*manifest["files"], "/etc/postfix/main.cf", f"{STATE_DIR}/manifest.json"]
    paths += [p + DB_SUFFIX for p in manifest["files"] if p.startswith("/etc/postfix/")]
    return sorted(paths)


def stats(host: TestHost) -> dict[str, tuple[int, int]]:
    """(inode, mtime in ns) of every managed file: a rename or a write changes one of them."""
    out = {}
    for path in managed_paths(host):
        st = os.stat(host.host_path(path))
        out[path] = (st.st_ino, st.st_mtime_ns)
    return out


def contents(host: TestHost) -> dict[str, bytes]:
    """Managed files that are text (postmap outputs are compared by lookups instead)."""
    return {p: host.host_path(p).read_bytes() for p in managed_paths(host)
            if not p.endswith(DB_SUFFIX)}


def generations(host: TestHost) -> list[str]:
    path = host.host_path(f"{STATE_DIR}/generations")
    return sorted(os.listdir(path)) if path.exists() else []


def daemon_pids(host: TestHost) -> dict[str, str]:
    """Master pids, and the children a reload replaces (qmgr; Dovecot's log process)."""
    pids = {
        "postfix master": host.exec("cat /var/spool/postfix/pid/master.pid").stdout.strip(),
        "dovecot master": host.exec("cat /run/dovecot/master.pid").stdout.strip(),
        "postgrey": host.exec("cat /run/postgrey.pid").stdout.strip(),
    }
    for line in host.exec(["ps", "-eo", "pid=,args="]).stdout.splitlines():
        pid, _, args = line.strip().partition(" ")
        if args.startswith(("qmgr ", "dovecot/log")):
            pids[args.split()[0]] = pid
    return pids


def reloads_logged(host: TestHost) -> dict[str, int]:
    return {
        "postfix": host.read_log("postfix").count("reload -- version"),
        "dovecot": host.read_log("dovecot").count("SIGHUP received"),
        "postgrey": host.read_log("testhost-init").count("started postgrey"),
    }


# The child process that a reload of each daemon replaces (see daemon_pids).
REPLACED_CHILD = {"postfix": "qmgr", "dovecot": "dovecot/log"}


def reloads_pending(host: TestHost, pids: dict[str, str], reloads: dict[str, int],
                    reloaded: set[str]) -> list[str]:
    """What the daemons have not done yet of the reloads an apply asked for (empty when done),
    compared with their pids and logged reloads before it: `postfix reload` and `doveadm reload`
    return before the daemon has re-read its files, logged it and replaced its children."""
    now_pids, now_reloads = daemon_pids(host), reloads_logged(host)
    pending = [f"{d}: reload not logged yet" for d in sorted(reloaded)
               if now_reloads[d] <= reloads[d]]
    pending += [f"{d}: {child} not replaced yet" for d, child in REPLACED_CHILD.items()
                if d in reloaded and now_pids.get(child) in (None, pids.get(child))]
    return pending


# --- 11. a second apply ---------------------------------------------------------------------
def test_second_apply_writes_nothing_and_reloads_nothing(site: Site, host: TestHost) -> None:
    pids, reloads = daemon_pids(host), reloads_logged(host)
    first = site.apply({
        "domain": "again.be",
        "domain_aliases": ["again.eu"],
        "mailboxes": {
            "again": box("Administrator"),
            "again0001": box("Away", addresses=["info"], vacation={
                "subject": "Away", "message": "Back soon.\n", "interval": "1h"},
                forward={"to": ["again@outside.example"], "keep_copy": False}),
        },
        "aliases": {"sales": ["again0001"]},
    })
    reloaded = {d for d in ("postfix", "dovecot", "postgrey") if f"reloaded {d}" in first.stdout}
    assert {"postfix", "dovecot"} <= reloaded, first  # a new server: both daemons reload
    wait_until(lambda: reloads_pending(host, pids, reloads, reloaded), 30,
               f"the first apply's reloads ({', '.join(sorted(reloaded))}) to take effect",
               until=lambda pending: not pending)
    files, gens = stats(host), generations(host)
    pids, reloads = daemon_pids(host), reloads_logged(host)
    assert len(files) > 10 and gens and {"qmgr", "dovecot/log"} <= set(pids)

    plan = site.plan("--detailed-exitcode")
    assert plan.code == 0, plan
    assert "No changes" in plan.stdout
    again = site.apply()
    assert "No changes" in again.stdout
    assert "reloaded" not in again.stdout and "generation" not in again.stdout

    assert stats(host) == files
    assert generations(host) == gens
    assert daemon_pids(host) == pids
    assert reloads_logged(host) == reloads


# --- round trips ----------------------------------------------------------------------------
def bulk_domains(mailboxes: int, per_domain: int = 100) -> list[dict[str, object]]:
    """`mailboxes` mailboxes over domains of at most `per_domain` each (no welcome mails)."""
    hashed = password_hash(PW)
    domains = []
    for d in range((mailboxes + per_domain - 1) // per_domain):
        account = f"bulk{d:02}"
        count = min(per_domain, mailboxes - d * per_domain)
        logins = [f"{account}{i:04}" for i in range(1, count + 1)]
        domains.append({
            "domain": f"{account}.be",
            "admin": logins[0],
            "mailboxes": {login: {"name": f"Person {login}", "password": hashed,
                                  "welcome": False} for login in logins},
        })
    return domains


def round_trips(site: Site) -> tuple[int, int]:
    """Plan, then apply, through the Python API: the round trips after each."""
    site.write_config()
    desired, issues = validate_run([str(site.root)])
    assert desired is not None, issues
    config = desired.server_config(SERVER)
    assert config.target is not None
    transport = SSHTransport(config.target, known_hosts=config.known_hosts,
                             identity=config.identity)
    try:
        prep = prepare(desired.intent(SERVER), transport)
        planned = transport.round_trips
        assert prep.plan.has_changes
        applied = apply_server(prep, desired.servers[SERVER])
        assert applied.changed, applied.output
        return planned, transport.round_trips
    finally:
        transport.close()


def test_round_trips_do_not_grow_with_mailboxes(
    start_testhost: Callable[..., TestHost], tmp_path: Path, release: str
) -> None:
    host = start_testhost("trips", release=release)
    site = Site.create(host, tmp_path / "repo")
    measured = {}
    for size in (1, 10, 1000):
        for path in (site.root / "domains").glob("*.yaml"):
            path.unlink()
        for domain in bulk_domains(size):
            site.write_domain(domain)
        measured[size] = round_trips(site)
        # After apply: a plan is one round trip and finds nothing to do.
        plan = site.plan("--detailed-exitcode")
        assert plan.code == 0, plan
    assert measured == {1: (1, 2), 10: (1, 2), 1000: (1, 2)}
    # The 1000 mailboxes are real: one of them receives mail.
    subject = f"bulk {token()}"
    send(host, sender(), "bulk070042@bulk07.be", subject)
    wait_for_subject(host, "bulk070042", PW, subject)


# --- host keys ------------------------------------------------------------------------------
def other_host_key(tmp_path: Path, ip: str) -> Path:
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kind, blob = key.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts_wrong"
    known.write_text(f"{ip} {kind} {blob}\n")
    return known


@pytest.mark.parametrize("case", ["empty", "wrong key"])
def test_unknown_or_changed_host_key_stops_the_run(
    site: Site, host: TestHost, tmp_path: Path, case: str
) -> None:
    site.apply({"domain": "keys.be", "mailboxes": {"keys": box("Administrator")}})
    if case == "empty":
        known = tmp_path / "known_hosts_empty"
        known.write_text("")
        expected = "host key is unknown"
    else:
        known = other_host_key(tmp_path, host.ip)
        expected = "host key CHANGED"
    before, gens = contents(host), generations(host)
    # Something to change, so that an apply that got through would show.
    site.write_domain({"domain": "keys2.be", "mailboxes": {"keys2": box("Administrator")}})
    try:
        for verb in (["plan"], ["apply", "--auto-approve"]):
            result = site.cli(*verb, "--known-hosts", str(known))
            assert result.code == 1, result
            assert expected in result.stderr, result
            assert "Traceback" not in result.output
    finally:
        site.remove_domain("keys2.be")
    assert contents(host) == before
    assert generations(host) == gens
    code, text = rcpt(host, sender(), "keys2@keys2.be")
    assert code >= 400 and "Relay access denied" in text, (code, text)  # not a hosted domain


# --- failures on the server -----------------------------------------------------------------
def restore_domain(*mailboxes: str) -> dict[str, object]:
    return {"domain": "restore.be",
            "mailboxes": {login: box(login.capitalize()) for login in mailboxes}}


def test_failed_check_changes_nothing(site: Site, host: TestHost) -> None:
    site.apply(restore_domain("restore", "restore0001"))
    before, gens = contents(host), generations(host)
    broken = "/etc/dovecot/conf.d/98-broken-by-hand.conf"
    host.exec(["tee", broken], input="this is { not dovecot\n")
    try:
        result = site.apply(restore_domain("restore", "restore0001", "restore0002"), check=False)
    finally:
        host.exec(["rm", "-f", broken])
    assert result.code == 1, result
    assert "doveconf rejected" in result.stderr and "nothing was changed" in result.stderr
    assert contents(host) == before
    assert generations(host) == gens
    staged = [p for p in os.listdir(host.host_path(STATE_DIR)) if p.startswith("stage")]
    assert staged == [], "the upload (with password hashes) was left behind"
    assert rcpt(host, sender(), "restore0002@restore.be")[0] == 550
    subject = f"still flowing {token()}"
    send(host, sender(), "restore0001@restore.be", subject)
    wait_for_subject(host, "restore0001", PW, subject)
    # Fixed by hand: the same apply now goes through.
    site.apply()
    assert rcpt(host, sender(), "restore0002@restore.be")[0] == 250


def test_mail_directory_of_the_wrong_owner_is_refused(site: Site, host: TestHost) -> None:
    """An operator made /var/vmail by hand, owned by root: Dovecot (as the mail user) could not
    create a mailbox in it and would defer every delivery. Apply refuses before the swap."""
    site.apply(restore_domain("restore", "restore0001"))
    before, gens = contents(host), generations(host)
    host.exec("chown 0:0 /var/vmail")
    try:
        result = site.apply(restore_domain("restore", "restore0001", "restore0004"), check=False)
    finally:
        host.exec("chown 5000:5000 /var/vmail")
    assert result.code == 1, result
    assert "/var/vmail is owned by 0:0" in result.stderr, result
    assert "chown 5000:5000 /var/vmail" in result.stderr and "nothing was changed" in result.stderr
    assert contents(host) == before and generations(host) == gens
    assert rcpt(host, sender(), "restore0004@restore.be")[0] == 550
    site.apply()
    subject = f"owner fixed {token()}"
    send(host, sender(), "restore0004@restore.be", subject)
    wait_for_subject(host, "restore0004", PW, subject)


def test_probe_catches_a_mailbox_dovecot_cannot_store_to(site: Site, host: TestHost) -> None:
    """A mailbox home left by hand, owned by root: the server would accept mail for the new
    mailbox and defer it forever (451 4.3.0). The probe after the reload opens the new mailbox
    as the mail user, fails, and the previous files come back: the address stays unknown."""
    site.apply(restore_domain("restore", "restore0001"))
    before = contents(host)
    home = "/var/vmail/restore.be/restore0005"
    host.exec(f"mkdir -p {home} && chown 0:0 {home} && chmod 0755 {home}")
    try:
        result = site.apply(restore_domain("restore", "restore0001", "restore0005"),
                            check=False)
        assert result.code == 1, result
        assert "mailbox restore0005 cannot be opened by Dovecot" in result.stderr, result
        assert "restor" in result.stderr  # the previous files were put back
        assert contents(host) == before
        assert rcpt(host, sender(), "restore0005@restore.be")[0] == 550
    finally:
        host.exec(f"rm -rf {home}")
    site.apply()
    subject = f"home fixed {token()}"
    send(host, sender(), "restore0005@restore.be", subject)
    wait_for_subject(host, "restore0005", PW, subject)


def test_failed_reload_restores_the_previous_generation(site: Site, host: TestHost) -> None:
    site.apply(restore_domain("restore", "restore0001"))
    before, gens = contents(host), generations(host)
    site.commands = {"postfix_reload": "echo postfix refuses to reload >&2; exit 3"}
    try:
        result = site.apply(restore_domain("restore", "restore0001", "restore0003"),
                            check=False)
    finally:
        site.commands = {}
    assert result.code == 1, result
    assert "postfix refuses to reload" in result.stderr
    assert "restor" in result.stderr  # it says it put the previous files back
    assert contents(host) == before
    assert generations(host) == gens  # undone whole: its generation (the live files) goes too
    assert rcpt(host, sender(), "restore0003@restore.be")[0] == 550
    subject = f"still flowing {token()}"
    send(host, sender(), "restore0001@restore.be", subject)
    wait_for_subject(host, "restore0001", PW, subject)
    # The plan still has the change to make, and a working reload makes it.
    assert site.plan("--detailed-exitcode").code == 2
    site.apply()
    assert rcpt(host, sender(), "restore0003@restore.be")[0] == 250



def test_dovecot_fragment_dovecot_does_not_read_is_caught(
    start_testhost: Callable[..., TestHost], tmp_path: Path, release: str
) -> None:
    """A layout whose Dovecot fragment is outside conf.d, on a new server: Dovecot comes back
    without mailstate's configuration (no LMTP socket), the probe sees it and everything is
    put back as it was; with the right layout the same apply works."""
    host = start_testhost("layout", release=release)
    site = Site.create(host, tmp_path / "repo")
    site.layout = {"dovecot_fragment": "/etc/dovecot/mailstate/99-mailstate.conf"}
    postconf = host.exec(["postconf", "-n"]).stdout
    result = site.apply(restore_domain("restore", "restore0001"), check=False)
    assert result.code == 1, result
    assert "LMTP socket missing" in result.stderr, result
    for path in ("/etc/dovecot/mailstate/99-mailstate.conf", "/etc/dovecot/mailstate/passwd",
                 "/etc/postfix/mailstate/virtual_mailboxes", f"{STATE_DIR}/manifest.json"):
        assert not host.host_path(path).exists(), path
    assert host.exec(["postconf", "-n"]).stdout == postconf

    site.layout = {}
    site.apply()
    subject = f"flowing {token()}"
    send(host, sender(), "restore0001@restore.be", subject)
    wait_for_subject(host, "restore0001", PW, subject)


def test_layout_change_leaves_no_forgotten_files(site: Site, host: TestHost) -> None:
    site.apply(restore_domain("restore", "restore0001"))
    old = "/etc/dovecot/conf.d/99-mailstate.conf"
    site.layout = {"dovecot_fragment": "/etc/dovecot/conf.d/99-mailstate-moved.conf"}
    try:
        site.apply()
        manifest = json.loads(host.host_path(f"{STATE_DIR}/manifest.json").read_text())
        assert old in manifest["files"] or not host.host_path(old).exists()
    finally:
        host.exec(["rm", "-f", old])
        site.layout = {}
        site.apply()


def test_import_over_ssh_writes_files_that_plan_to_no_change(
    site: Site, host: TestHost, tmp_path: Path
) -> None:
    site.apply(restore_domain("restore", "restore0001"))
    other = tmp_path / "imported-repo"
    imported = site.cli("import", "--server", SERVER, "--out", str(other / "domains"))
    assert imported.code == 0, imported
    accounts = imported.stdout.split("Accounts in these files: ", 1)[1].split(" (", 1)[0]
    config = YAML(typ="safe", pure=True).load((site.root / "mailstate.yaml").read_text())
    owned: dict[str, list[str]] = {a: [] for a in accounts.split(", ")}
    for path in (other / "domains").glob("*.yaml"):
        data = YAML(typ="safe", pure=True).load(path.read_text())
        owned[data["account"]] += [data["domain"], *data.get("domain_aliases", [])]
    config["accounts"] = {a: {"plan": "tests", "domains": d} for a, d in owned.items()}
    (other / "mailstate.yaml").write_text(dump_yaml(config))
    plan = run_cli("plan", "--detailed-exitcode", cwd=other)
    assert plan.code == 0, (plan, run_cli("plan", "--format", "json", cwd=other))
    assert "No changes" in plan.stdout
