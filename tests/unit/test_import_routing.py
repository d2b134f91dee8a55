"""A Virtualmin takeover changes no address's routing: for both of Virtualmin's naming styles
(``jan.monsite`` and ``jean@autre.be``), every address of the virtual table is resolved as
Postfix resolves Virtualmin's files (``mailstate.importer.virtualmin.routing``) and as mailstate
routes the imported repository (``mailstate.model.routing.routes``), and the two agree, except
for the addresses the import names in a warning.

Also: a disabled domain is never imported as active, hostile text is left out with a warning
and a comment, and the imported repository validates.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from mailstate.importer.virtualmin.files import VirtualminFiles, from_files
from mailstate.importer.virtualmin.routing import REPLY, VirtualminRouting
from mailstate.model.routing import REFUSED, routes
from mailstate.model.state import ServerState
from mailstate.offline import validate
from tests.testhost import virtualmin as vm
from tests.testhost import virtualmin_at as vmat
from tests.unit.conftest import LocalServer

MAIN_CF = ("smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination, "
           "check_policy_service inet:127.0.0.1:10023\n"
           "virtual_alias_maps = hash:/etc/postfix/virtual\nhome_mailbox = Maildir/\n")


def _virtualmin(root: Path) -> VirtualminFiles:
    """Virtualmin's files as they are on disk (not through the importer's reader)."""
    files = {f"/{rel}": (root / rel).read_bytes()
             for rel in ("etc/postfix/virtual", "etc/aliases", "etc/passwd", "etc/shadow")}
    for path in (root / "etc/webmin/virtual-server").rglob("*"):
        if path.is_file():
            files["/" + str(path.relative_to(root))] = path.read_bytes()
    return from_files(files, {})


def _import(server: LocalServer, build: object, name: str) -> tuple[Path, str]:
    build(server.root)  # type: ignore[operator]
    (server.root / "etc/postfix/main.cf").write_text(MAIN_CF)
    out = server.work / "adopted"
    result = server.cli("import", "--from", "virtualmin", "--server", name, "--out", str(out))
    assert result.exit_code == 0, result.output
    return out, result.output


class Mailstate:
    """Where mail to an address goes in the repository mailstate renders, in the oracle's
    words: ``mailbox UNIXUSER``, outside addresses, ``reply``."""

    def __init__(self, state: ServerState, users: dict[str, str], hosted: set[str]) -> None:
        self.state, self.users = state, users  # users: login -> Unix name
        self.hosted = hosted  # the server's domains: one mailstate has not refuses mail
        self.routes = {name: routes(d) for name, d in state.domains.items()}
        self.alias_of = {a: d.name for d in state.domains.values() for a in d.domain_aliases}
        self.boxes = state.mailboxes()

    def route(self, address: str, depth: int = 0) -> frozenset[str]:
        local, _, domain = address.rpartition("@")
        domain = self.alias_of.get(domain, domain)
        if domain not in self.routes:
            return frozenset() if domain in self.hosted else frozenset({address})
        table = self.routes[domain]
        found = table.get(f"{local}@{domain}") if local else None
        if found is None:
            found = table.get(f"@{domain}", REFUSED)
        if found.startswith(REFUSED) or depth > 12:
            return frozenset()
        out: set[str] = set()
        for part in found.split(" + "):
            if part.startswith("mailbox "):
                login = part.removeprefix("mailbox ")
                out.add(f"mailbox {self.users[login]}")
                if self.boxes[login].vacation is not None:
                    out.add(REPLY)
            else:
                out |= self.route(part, depth + 1)
        return frozenset(out)


def _compare(server: LocalServer, out: Path, name: str) -> dict[str, tuple[set, set]]:
    desired, issues = validate([str(out)])
    assert desired is not None, [str(i) for i in issues]
    config = YAML(typ="safe").load((out / "mailstate.yaml").read_text())
    files = _virtualmin(server.root)
    by_uid = {u.uid: u.name for u in files.users.values()}
    homes = config["servers"][name]["layout"]["homes"]
    users = {login: by_uid[h["uid"]] for login, h in homes.items()}
    theirs = VirtualminRouting(files)
    ours = Mailstate(desired.servers[name], users, theirs.domains)
    return {a: (set(theirs.route(a)), set(ours.route(a))) for a in theirs.addresses()
            if theirs.route(a) != ours.route(a)}


def test_prefix_style_routing_is_unchanged_but_where_the_import_says(
        server: LocalServer) -> None:
    out, output = _import(server, vm.build, "vm1")
    differ = _compare(server, out, "vm1")
    # jan's forward was on jan@ only (its alias jan-monsite.be); info@ and sales@ reach his
    # mailbox as Unix user: in mailstate his forward applies to them, as the import says
    # (for monsite.be, whose copy-mode alias monsite.com receives the same); oud's mailbox
    # is locked: left out, its addresses refuse mail
    assert set(differ) == {"info@monsite.be", "info@monsite.com", "sales@monsite.be",
                           "sales@monsite.com", "oud@monsite.be", "oud@monsite.com"}, differ
    assert "they also apply to info" in output
    assert "sales@monsite.be: on Virtualmin this went into jan.monsite's mailbox" in output
    assert "oud.monsite not imported: it is disabled in Virtualmin" in output


def test_user_at_domain_style_routing_is_unchanged_but_where_the_import_says(
        server: LocalServer) -> None:
    out, output = _import(server, vmat.build, "vm2")
    files = _virtualmin(server.root)
    oracle = VirtualminRouting(files)
    assert {a: set(oracle.route(a)) for a in vmat.EXPECTED} == vmat.EXPECTED  # the oracle
    differ = _compare(server, out, "vm2")
    assert set(differ) == set(vmat.ANNOUNCED), differ
    for address, text in vmat.ANNOUNCED.items():
        assert text in output, address
        assert differ[address][1] == set()  # left out: refused, never somewhere else


@pytest.fixture
def at_style(server: LocalServer) -> tuple[Path, str]:
    return _import(server, vmat.build, "vm2")


def test_forwards_under_every_key_form_and_extra_addresses(at_style: tuple[Path, str]) -> None:
    out, output = at_style
    autre = YAML(typ="safe").load((out / "domains/autre.be.yaml").read_text())
    boxes = autre["mailboxes"]
    assert boxes["jean"]["forward"] == {"to": ["jean.perso@example.org"], "keep_copy": False}
    assert boxes["jean"]["addresses"] == ["contact"]
    assert boxes["marc"]["forward"] == {"to": ["marc@example.net"], "keep_copy": True}
    assert boxes["lena"]["forward"] == {"to": ["lena@example.net"], "keep_copy": True}
    assert boxes["lena"]["addresses"] == ["info"]
    assert autre["aliases"] == {"team": ["lena@example.net", "marc", "marc@example.net"]}
    assert "oud" not in boxes
    # extra addresses are the mailbox's own, with no warning that they were not
    assert "on Virtualmin its forward" not in output and "went into" not in output


def test_a_disabled_domain_is_not_imported_as_active(at_style: tuple[Path, str]) -> None:
    out, output = at_style
    assert not (out / "domains/ferme.be.yaml").exists()
    config = YAML(typ="safe").load((out / "mailstate.yaml").read_text())
    assert "ferme" not in config["accounts"]
    assert all(h["domain"] != "ferme.be" for h in config["servers"]["vm2"]["layout"]["homes"]
               .values())
    assert "ferme.be: not imported: its mail is disabled in Virtualmin" in output
    assert "its mail is disabled in Virtualmin" in (out / "mailstate.yaml").read_text()


def test_hostile_text_is_left_out_with_a_warning_and_a_comment(
        server: LocalServer, at_style: tuple[Path, str]) -> None:
    out, output = at_style
    text = (out / "domains/autre.be.yaml").read_text()
    comments = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    body = text[len(comments):]
    for name in ("&anchor", "sales:x", "elsewhere.example"):
        assert name not in body and name in comments and name in output
    autre = YAML(typ="safe").load(text)
    assert autre["mailboxes"]["sophie"]["vacation"]["subject"] == "Away"
    assert "from" not in autre["mailboxes"]["sophie"]["vacation"]
    assert "mailboxlimit='1²' is not a number" in output
    assert server.cli("validate", str(out), target=False).exit_code == 0
    plan = server.cli("plan", str(out), "--detailed-exitcode", target=False)
    assert plan.exit_code == 2 and "0 to remove" in plan.output, plan.output
    assert server.cli("apply", str(out), "--auto-approve", target=False).exit_code == 0
    again = server.cli("plan", str(out), "--detailed-exitcode", target=False)
    assert again.exit_code == 0, again.output


def test_numbers_in_unicode_digits_are_refused_not_a_crash() -> None:
    from mailstate.importer.virtualmin.files import number, parse_passwd, parse_repquota

    assert number("12") == 12 and number("1²") is None and number("٣") is None
    assert parse_passwd("x:x:1²:1000::/home/x:/bin/false\n") == {}
    assert parse_repquota("#1000 -- 1 2² 3\n") == {}
