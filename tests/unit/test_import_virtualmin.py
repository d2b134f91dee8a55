"""`mailstate import --from virtualmin` on a local target laid out as Virtualmin leaves a server.

The fixture (tests/testhost/virtualmin.py) writes Virtualmin's own formats; the import must
give a repository that validates, plans as a takeover only (nothing removed), applies, and then
plans to no change; every address must deliver where it did on Virtualmin, with the same login
names and password hashes, and the Maildirs where they were.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

import pytest
from passlib.hash import md5_crypt, sha512_crypt
from ruamel.yaml import YAML

from mailstate.files.render import alias_entries
from mailstate.importer.virtualmin import autoreply
from mailstate.importer.virtualmin.files import parse_repquota, split_values
from mailstate.model.state import ServerState
from tests.testhost import virtualmin as vm
from tests.unit.conftest import LocalServer

MAIN_CF = ("smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination, "
           "check_policy_service inet:127.0.0.1:10023\n"
           "virtual_alias_maps = hash:/etc/postfix/virtual\nhome_mailbox = Maildir/\n")
LOGIN = {"anna@bakkerij.be": "anna"}  # Unix name -> login, where Dovecot strips @domain


def _import(server: LocalServer) -> tuple[Path, str]:
    vm.build(server.root)
    (server.root / "etc/postfix/main.cf").write_text(MAIN_CF)
    out = server.work / "adopted"
    result = server.cli("import", "--from", "virtualmin", "--server", "vm1", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out, result.output


def _load(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


@pytest.fixture
def adopted(server: LocalServer) -> tuple[Path, str]:
    return _import(server)


def test_import_validates_plans_the_takeover_applies_and_then_plans_no_change(
        server: LocalServer, adopted: tuple[Path, str]) -> None:
    out, _ = adopted
    assert server.cli("validate", str(out), target=False).exit_code == 0
    plan = server.cli("plan", str(out), "--detailed-exitcode", target=False)
    assert plan.exit_code == 2, plan.output
    assert "0 to remove" in plan.output and "mailbox jan.monsite" in plan.output
    before = {p: c for p, c in server.contents().items() if p.startswith(("home/", "etc/webm"))}
    applied = server.cli("apply", str(out), "--auto-approve", target=False)
    assert applied.exit_code == 0, applied.output
    again = server.cli("plan", str(out), "--detailed-exitcode", target=False)
    assert again.exit_code == 0 and "No changes" in again.output, again.output
    after = server.contents()
    assert all(after.get(p) == c for p, c in before.items())  # mail and records untouched
    assert (server.root / "etc/postfix/virtual").exists()  # Virtualmin's files stay
    assert not list(server.root.glob("var/lib/mailstate/outbox/*"))  # no welcome mails


def test_logins_passwords_and_homes_are_kept(server: LocalServer,
                                             adopted: tuple[Path, str]) -> None:
    out, _ = adopted
    server.cli("apply", str(out), "--auto-approve", target=False)
    lines = [line.split(":") for line in server.read("/etc/dovecot/mailstate/passwd")
             .splitlines() if not line.startswith("#")]
    by_login = {f[0]: f for f in lines}
    assert set(by_login) == {"monsite", "jan.monsite", "piet.monsite", "els.monsite", "bakker",
                             "anna", "kees", "marie.monsiteeu"}  # oud.monsite: locked
    for user in vm.USERS:
        if user.name == "oud.monsite":
            continue
        fields = by_login[LOGIN.get(user.name, user.name)]
        assert (fields[2], fields[3], fields[5]) == (str(user.uid), str(user.gid), user.home)
        scheme, _, digest = fields[1][1:].partition("}")
        if scheme == "SHA512-CRYPT":
            assert sha512_crypt.verify(user.password, digest)
        elif scheme == "MD5-CRYPT":
            assert md5_crypt.verify(user.password, digest)
        else:
            assert scheme == "CRYPT" and digest.startswith("$y$")
            lib = ctypes.CDLL(ctypes.util.find_library("crypt"))
            lib.crypt.restype = ctypes.c_char_p
            assert lib.crypt(user.password.encode(), digest.encode()).decode() == digest


def _resolve(state: ServerState, address: str, depth: int = 0) -> set[str]:
    """Where Postfix's virtual alias + mailbox maps send an address: logins and outside
    addresses ('reply' for a mailbox with a vacation)."""
    entries = {k: v for d in state.domains.values() for k, v in alias_entries(d).items()}
    boxes = {a: mb for mb in state.mailboxes().values() for a in (mb.address, *mb.addresses)}
    key = address if address in entries else "@" + address.rpartition("@")[2]
    if depth > 8 or key not in entries:
        if address in boxes:
            mb = boxes[address]
            return {mb.login} | ({"reply"} if mb.vacation else set())
        return {address}
    out: set[str] = set()
    for target in entries[key]:
        if target == address and address in boxes:
            mb = boxes[address]
            out |= {mb.login} | ({"reply"} if mb.vacation else set())
        else:
            out |= _resolve(state, target, depth + 1)
    return out


def test_every_address_delivers_where_it_did(server: LocalServer,
                                             adopted: tuple[Path, str]) -> None:
    out, _ = adopted
    desired, _prepared = server.prepare(out)
    state = desired.servers["vm1"]
    for address, where in vm.EXPECTED.items():
        want = {LOGIN.get(w, w) for w in vm.CHANGED_BY_MAILSTATE.get(address, where)}
        assert _resolve(state, address) == want, address
    jan = state.domains["monsite.be"].mailboxes["jan.monsite"]
    assert not jan.primary_enabled  # jan.monsite@monsite.be did not exist on Virtualmin


def test_domain_files_say_what_virtualmin_had(adopted: tuple[Path, str]) -> None:
    out, output = adopted
    config = _load(out / "mailstate.yaml")
    assert config["accounts"] == {
        "bakker": {"plan": "small-business", "domains": ["bakkerij.be", "bakkerij.nl"],
                   "contact": "bakker@bakkerij.be"},
        "monsite": {"plan": "recommended", "domains": ["monsite.be", "monsite.com", "monsite.eu"],
                    "contact": "owner@monsite.example"}}
    assert config["plans"]["recommended"]["mailboxes"] == 10
    assert config["plans"]["recommended"]["domains"] == 5
    grey = config["servers"]["vm1"]["greylisting"]
    assert grey == {"enabled": True, "delay": "60s", "auto_whitelist_clients": 0}
    monsite = _load(out / "domains/monsite.be.yaml")
    assert monsite["domain_aliases"] == ["monsite.com"]  # copy mode folded back
    assert not (out / "domains/monsite.com.yaml").exists()
    assert "monsite.com" not in str(monsite["mailboxes"]) + str(monsite.get("aliases"))
    boxes = monsite["mailboxes"]
    assert boxes["jan.monsite"]["forward"] == {"to": ["jan@example.org"], "keep_copy": True}
    assert boxes["jan.monsite"]["addresses"] == ["info", "jan"]
    assert boxes["piet.monsite"]["forward"] == {"to": ["piet@example.org"], "keep_copy": False}
    assert boxes["els.monsite"]["vacation"] == {
        "subject": "Out of office", "from": "els@monsite.be", "interval": "10m",
        "message": "I am away until 5 January.\nYour mail is read when I am back.\n"}
    assert all(b["welcome"] is False for b in boxes.values())
    assert monsite["aliases"] == {"frederic": ["frederic@example.org"],
                                  "sales": ["extern@example.org", "jan"]}
    eu = _load(out / "domains/monsite.eu.yaml")  # a sub-server: same account, same admin
    assert (eu["account"], eu["admin"]) == ("monsite", "monsite")
    assert list(eu["mailboxes"]) == ["marie.monsiteeu"]
    bakkerij = _load(out / "domains/bakkerij.be.yaml")
    assert bakkerij["domain_aliases"] == ["bakkerij.nl"]  # catch-all mode
    assert bakkerij["catch_all"] == ["anna"]
    assert bakkerij["greylisting"] is False  # in postgrey's recipient whitelist
    assert set(bakkerij["mailboxes"]) == {"anna", "bakker", "kees"}
    # what cannot be carried is said, in the output and in the file it concerns
    for text in ("oud.monsite not imported", ".procmailrc is not carried",
                 "website-only.be: not imported", "they also apply to info",
                 "sales@monsite.be: on Virtualmin this went into jan.monsite's mailbox",
                 "MD5-CRYPT (weak) password hashes for piet.monsite:",
                 "MD5-CRYPT (weak) password hashes for kees:"):
        assert text in output
    assert "oud.monsite not imported" in (out / "domains/monsite.be.yaml").read_text()
    assert "website-only.be" in (out / "mailstate.yaml").read_text()


def test_import_refuses_a_directory_that_is_not_empty_and_an_account(
        server: LocalServer) -> None:
    vm.build(server.root)
    out = server.work / "adopted"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    result = server.cli("import", "--from", "virtualmin", "--out", str(out))
    assert result.exit_code == 1 and "not empty" in result.output
    result = server.cli("import", "--from", "virtualmin", "--account", "x", "--out",
                        str(server.work / "new"))
    assert result.exit_code == 1 and "--account" in result.output
    assert not (server.work / "new").exists()


def test_rollback_puts_back_what_virtualmin_had(server: LocalServer,
                                                adopted: tuple[Path, str]) -> None:
    out, _ = adopted
    postgrey = server.read("/etc/default/postgrey")
    server.cli("apply", str(out), "--auto-approve", target=False)
    assert server.read("/etc/default/postgrey") != postgrey
    result = server.cli("rollback", str(out), "--auto-approve", target=False)
    assert result.exit_code == 0, result.output
    assert server.read("/etc/default/postgrey") == postgrey
    assert not (server.root / "etc/dovecot/mailstate/passwd").exists()


def test_autoreply_file_headers_become_a_vacation() -> None:
    made = autoreply.convert("Reply-Period: 3600\nAutoreply-Start: 1798761600\n"
                             "Autoreply-End: 1799366400\nNo-Autoreply: boss@example.org\n"
                             "Dear $FROM,\nI am away.\n", "f")
    assert made.vacation == {"subject": "Autoreply", "message": "Dear $FROM,\nI am away.\n",
                             "interval": 3600, "start": __import__("datetime").date(2027, 1, 1),
                             "end": __import__("datetime").date(2027, 1, 8)}
    text = "\n".join(made.warnings)
    assert "No-Autoreply" in text and "variables" in text and "Subject" in text


def test_quota_and_alias_values_are_read_as_virtualmin_writes_them() -> None:
    report = ("*** Report for user quotas on device /dev/sda1\n"
              "User            used    soft    hard  grace    used  soft  hard  grace\n"
              "#20002    --    1200  102400  204800            10     0     0\n"
              "#20003    --      12       0       0             1     0     0\n")
    assert parse_repquota(report) == {20002: 204800 * 1024}
    assert split_values('\\jan, "|/etc/webmin/virtual-server/autoreply.pl /f jan", x@y.be') \
        == ["\\jan", "|/etc/webmin/virtual-server/autoreply.pl /f jan", "x@y.be"]


def test_a_copy_mode_line_that_differs_is_said(server: LocalServer) -> None:
    vm.build(server.root)
    with (server.root / "etc/postfix/virtual").open("a") as f:
        f.write("only@monsite.com\tfrederic@example.org\n")
    result = server.cli("import", "--from", "virtualmin", "--out", str(server.work / "a"))
    assert result.exit_code == 0
    assert ("only@monsite.com -> frederic@example.org has no counterpart in monsite.be's"
            in result.output)
