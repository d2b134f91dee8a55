"""`layout.homes`: mailboxes whose mail stays where another tool put it, as its Unix user.

Rendered into the passwd-file (home, uid, gid) and Dovecot's first_valid_uid/gid, parsed back
to the same state, and never given to the same login at another domain.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mailstate.files.parse import parse
from mailstate.files.render import render
from mailstate.model.layout import Facts, KeptHome, Layout
from tests.unit.samples import HASH, mailbox, one_domain

KEPT = KeptHome(domain="x.be", home="/home/x/homes/jo", uid=1001, gid=1002)


@pytest.mark.parametrize("version", ["2.3.19", "2.4.1"])
def test_a_kept_home_is_rendered_and_parsed_back(version: str) -> None:
    state = one_domain(mailbox("jo", password=HASH), mailbox("new", password=HASH))
    layout, facts = Layout(homes={"jo": KEPT}), Facts(dovecot_version=version)
    files = {f.path: f.content for f in render(state, layout, facts).files}
    passwd = files["/etc/dovecot/mailstate/passwd"].decode()
    assert f"jo:{HASH}:1001:1002:Jo:/home/x/homes/jo::" in passwd
    assert f"new:{HASH}:5000:5000:Jo:/var/vmail/x.be/new::" in passwd
    conf = files["/etc/dovecot/conf.d/99-mailstate.conf"].decode()
    assert "first_valid_uid = 1001\n" in conf and "first_valid_gid = 1002\n" in conf
    parsed = parse(files, layout, facts)
    assert parsed.state == state and not parsed.warnings


def test_a_kept_home_is_only_for_its_own_domain() -> None:
    state = one_domain(mailbox("jo", password=HASH))
    layout = Layout(homes={"jo": KEPT.model_copy(update={"domain": "other.be"})})
    files = {f.path: f.content for f in render(state, layout, Facts()).files}
    assert ":5000:5000:Jo:/var/vmail/x.be/jo::" in files["/etc/dovecot/mailstate/passwd"].decode()
    # the same files read with an entry for x.be: the passwd line is not what it would
    # render, which is reported (drift), never silently taken as the kept home
    assert parse(files, Layout(homes={"jo": KEPT}), Facts()).warnings


@pytest.mark.parametrize("bad", [{"uid": 0}, {"uid": 999}, {"gid": 100},
                                 {"home": "/home/x/../root"}, {"home": "home/x"},
                                 {"domain": "not a domain"}])
def test_kept_homes_refuse_system_accounts_and_odd_paths(bad: dict) -> None:
    with pytest.raises(ValidationError):
        KeptHome(**{**KEPT.model_dump(), **bad})
    with pytest.raises(ValidationError):
        Layout(homes={"Jo Bad": KEPT})
