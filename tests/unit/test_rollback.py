"""`mailstate rollback` on the local target: the files an apply replaced come back."""

from __future__ import annotations

import re

from mailstate.engine.generations import when
from tests.unit.conftest import LocalServer

PASSWD = "etc/dovecot/mailstate/passwd"


def generations(listed: str) -> list[str]:
    return re.findall(r"^  (\d{8}T\d{12}Z) ", listed, re.M)


def _quota(server: LocalServer, size: str) -> None:
    server.domain(server.example().read_text().replace("quota: 3G", f"quota: {size}"))


def test_rollback_restores_the_previous_files_and_plan_shows_the_difference(
        server: LocalServer) -> None:
    path = server.example()
    server.apply(path)
    before = (server.root / PASSWD).read_bytes()
    _quota(server, "5G")
    server.apply(path)
    assert b"storage=5G" in (server.root / PASSWD).read_bytes()

    listed = server.cli("rollback", str(path), "--list")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[0] == "maximusconfessor:" and len(lines) == 4  # live, then two generations
    [older, newer] = generations(listed.stdout)
    assert lines[1] == f"  live: the files written by the apply of {when(newer)}"
    assert lines[2].endswith("UTC  the files before the apply of that time")
    assert lines[3].endswith("what `rollback` puts back by default")
    assert re.fullmatch(r"  \d{8}T\d{12}Z  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  .*", lines[2])

    result = server.cli("rollback", str(path), "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "rolled back" in result.output
    assert (server.root / PASSWD).read_bytes() == before

    plan = server.cli("plan", str(path))
    assert "drift" not in plan.output  # manifest and recorded state came back with the files
    assert "quota: 3G -> 5G" in plan.output
    after = server.cli("rollback", str(path), "--list").stdout.splitlines()
    assert after[1] == f"  live: the files written by the apply of {when(older)}"
    assert after[3].endswith("the same files as live now (rolled back)")


def test_rollback_of_the_first_apply_removes_what_mailstate_created(server: LocalServer) -> None:
    path = server.example()
    server.apply(path)
    [first] = generations(server.cli("rollback", str(path), "--list").stdout)
    result = server.cli("rollback", str(path), "--generation", first, "--auto-approve")
    assert result.exit_code == 0, result.output
    assert not (server.root / PASSWD).exists()
    assert not (server.state_dir / "manifest.json").exists()
    assert not (server.state_dir / "state.json").exists()


def test_rollback_refuses_without_approval_or_an_unknown_generation(server: LocalServer) -> None:
    path = server.example()
    server.apply(path)
    refused = server.cli("rollback", str(path))
    assert refused.exit_code == 1 and "nothing was changed" in refused.output
    unknown = server.cli("rollback", str(path), "--generation", "nope", "--auto-approve")
    assert unknown.exit_code == 1 and "no generation 'nope'" in unknown.output
    assert (server.root / PASSWD).exists()
