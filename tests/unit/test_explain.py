"""`mailstate explain ADDRESS`: where mail goes, offline, for every way an address can route."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from mailstate.cli import main
from mailstate.model.routing import explain, route_changes, routes
from mailstate.model.state import Domain, Greylisting, ServerState, Vacation

from .conftest import EXAMPLE
from .test_plan import mailbox

TODAY = dt.date(2026, 12, 24)
AWAY = Vacation(subject="Away", message="x", start=dt.date(2026, 12, 20),
                end=dt.date(2027, 1, 5))


def servers(**domain: object) -> dict[str, ServerState]:
    boxes = [mailbox("info", addresses=("contact@monsite.be",), forward=("me@gmail.com",),
                     vacation=AWAY),
             mailbox("only", forward=("out@gmail.com",), keep_copy=False),
             mailbox("off", primary_enabled=False, addresses=("sales@monsite.be",)),
             mailbox("admin")]
    fields = {"aliases": {"frederic@monsite.be": ("frederic@gmail.com",),
                          "abuse@monsite.be": ("admin@monsite.be",)},
              "domain_aliases": ("monsite.com",), **domain}
    state = ServerState(domains={"monsite.be": Domain(
        name="monsite.be", mailboxes={m.login: m for m in boxes}, **fields)},  # type: ignore
        greylisting=Greylisting(whitelist_recipients=("admin@monsite.be",)))
    return {"mx": state}


@pytest.mark.parametrize("address, expected", [
    ("info@monsite.be", ["the primary address of mailbox info (Info)",
                         "forwarded to me@gmail.com (a copy is kept in the mailbox)",
                         "delivered to: mailbox info + me@gmail.com",
                         "an automatic reply answers today until 2027-01-05 (subject: 'Away'), "
                         "at most once per sender every 10m",
                         "greylisting: on (mail from a sender not seen before is delayed 15m)"]),
    ("Contact@monsite.be", ["an extra address of mailbox info (Info)"]),
    ("only@monsite.be", ["forwarded to out@gmail.com (no copy is kept)",
                         "delivered to: out@gmail.com", "no automatic reply"]),
    ("off@monsite.be", ["the primary address of mailbox off (Info), which is off: mail to it "
                        "is refused"]),
    ("sales@monsite.be", ["an extra address of mailbox off (Info)",
                          "delivered to: mailbox off"]),
    ("frederic@monsite.be", ["an alias (no mailbox) for frederic@gmail.com"]),
    ("abuse@monsite.be", ["a role alias for admin@monsite.be", "delivered to: mailbox admin"]),
    ("admin@monsite.be", ["greylisting: off for this address (server whitelist)"]),
    ("frederic@monsite.com", ["monsite.com is a domain alias of monsite.be: mail to "
                              "frederic@monsite.com goes where frederic@monsite.be goes",
                              "an alias (no mailbox) for frederic@gmail.com"]),
    ("nobody@monsite.be", ["no such address at monsite.be and no catch-all: mail to it is "
                           "refused"]),
    ("someone@gmail.com", ["refused: no domain file hosts gmail.com"]),
])
def test_every_route(address: str, expected: list[str]) -> None:
    lines = explain(address, servers(), TODAY).lines
    for line in expected:
        assert line in lines, lines


def test_catch_all_vacation_dates_and_greylisting_off() -> None:
    state = servers(catch_all=("info@monsite.be",), greylisting=False)
    lines = explain("nobody@monsite.be", state, TODAY).lines
    assert lines == ["no address of its own: the catch-all of monsite.be takes it, for "
                     "info@monsite.be", "delivered to: mailbox info + me@gmail.com",
                     "greylisting: off for monsite.be"]
    early = explain("info@monsite.be", state, dt.date(2026, 12, 1)).lines
    assert "an automatic reply is set but does not answer today (from 2026-12-20)" in early
    late = explain("info@monsite.be", state, dt.date(2027, 2, 1)).lines
    assert "an automatic reply is set but does not answer today (ended 2027-01-05)" in late


def test_routing_changes_per_address() -> None:
    before, after = servers()["mx"], servers(catch_all=("admin@monsite.be",))["mx"]
    [change] = route_changes(before, after)
    assert (change.address, change.old, change.new) == ("@monsite.be", "refused",
                                                        "mailbox admin")
    assert routes(before.domains["monsite.be"])["info@monsite.be"] == "mailbox info + " \
        "me@gmail.com"


def test_the_cli_explains_from_the_example_file() -> None:
    result = CliRunner().invoke(main, ["explain", "info@monsite.be", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:4] == [
        "info@monsite.be (server maximusconfessor)",
        "  an extra address of mailbox monsite0001 (Info)",
        "  forwarded to monsite@gmail.com (a copy is kept in the mailbox)",
        "  delivered to: mailbox monsite0001 + monsite@gmail.com"]
    bad = CliRunner().invoke(main, ["explain", "x@monsite.be", "/nonexistent.yaml"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
