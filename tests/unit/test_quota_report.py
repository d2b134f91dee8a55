"""The read round trip reads each mailbox's quota usage (in the vmail directory or a kept
home); plan warns when a quota is too low."""

from __future__ import annotations

import json

from mailstate.server.read import _usage
from tests.testhost import virtualmin as vm
from tests.unit.conftest import LocalServer
from tests.unit.test_import_virtualmin import _import


def test_du_lines_become_bytes_per_mailbox() -> None:
    text = ("3145728\tmonsite.be/monsite0001/Maildir/maildirsize\n"
            "12\tmonsite.be/monsite/Maildir/maildirsize\nbad line\n")
    assert _usage(text) == {"monsite.be/monsite0001": 3145728, "monsite.be/monsite": 12}


def test_plan_warns_when_a_mailbox_already_holds_more_than_its_new_quota(
        server: LocalServer) -> None:
    path = server.example()
    server.apply(path)
    maildir = server.root / "var/vmail/monsite.be/monsite0001/Maildir"
    maildir.mkdir(parents=True)
    # Dovecot's maildirsize: the quota definition, then "bytes messages" lines to add up.
    (maildir / "maildirsize").write_text("3221225472S\n2097152 10\n1048576 4\n")
    text = server.cli("plan", str(path)).output
    assert "holds" not in text  # 3 MiB under a 3G quota: nothing to say
    server.domain(path.read_text().replace("quota: 3G", "quota: 2M"))
    text = server.cli("plan", str(path)).output
    assert "mailbox monsite0001@monsite.be holds 3.0M, more than its quota 2M" in text
    data = json.loads(server.cli("plan", str(path), "--format", "json").stdout)
    assert any("more than its quota" in w for w in data["servers"][0]["warnings"])


def test_a_mailbox_whose_home_stays_where_virtualmin_put_it_is_in_the_report(
        server: LocalServer) -> None:
    """layout.homes: the usage is read from the kept home's Maildir, like any other's."""
    out, _ = _import(server)
    assert server.cli("apply", str(out), "--auto-approve", target=False).exit_code == 0
    kept = server.root / vm.BY_NAME["kees"].home.lstrip("/") / "Maildir/maildirsize"
    kept.write_text("3221225472S\n2097152 10\n1048576 4\n")
    domain = out / "domains/bakkerij.be.yaml"
    domain.write_text(domain.read_text().replace("    name: Kees\n",
                                                 "    name: Kees\n    quota: 2M\n"))
    text = server.cli("plan", str(out), target=False).output
    assert "mailbox kees@bakkerij.be holds 3.0M, more than its quota 2M" in text
    assert "anna@bakkerij.be holds" not in text  # no maildirsize yet: nothing counted


def test_plan_names_mailboxes_above_a_quota_warning_threshold(server: LocalServer) -> None:
    """The thresholds of mailstate.yaml (80 % and 95 % by default): the highest one crossed."""
    path = server.example()
    server.domain(path.read_text().replace("quota: 3G", "quota: 10M"))
    server.apply(path)
    maildir = server.root / "var/vmail/monsite.be/monsite0001/Maildir"
    maildir.mkdir(parents=True)
    (maildir / "maildirsize").write_text("10485760S\n8388608 10\n")  # 8 MiB of 10: 80 %
    text = server.cli("plan", str(path)).output
    assert ("mailbox monsite0001@monsite.be holds 8.0M, 80 % of its quota 10M (above the "
            "80 % warning)") in text, text
    (maildir / "maildirsize").write_text("10485760S\n10000000 10\n")  # 95 %
    assert "95 % of its quota 10M (above the 95 % warning)" in server.cli(
        "plan", str(path)).output
    (maildir / "maildirsize").write_text("10485760S\n7000000 10\n")  # 66 %
    assert "holds" not in server.cli("plan", str(path)).output
