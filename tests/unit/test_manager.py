"""The library face (``mailstate.Manager``) and a fleet of local targets: parallel plans and
applies, a failing server beside working ones, the safe-delete share, moves, and the example
repository planned and applied on local targets as the README shows."""

from __future__ import annotations

import io
import shutil
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailstate import Manager
from mailstate.cli import main
from mailstate.cli.progress import NORMAL, View
from mailstate.server.local import LocalTransport
from mailstate.views.text import render_text

from .conftest import REPO

HASH = ('"{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$N4YQIqT0fi9lTMmZ8x6DcA$'
        'u81pxxOgnS3a2Iy3reMdzs6WvFe2b2v9ohpBpW+qOM4"')
PASSWD = "etc/dovecot/mailstate/passwd"
NAMES = ["alpha", "beta", "gamma", "delta"]  # the accounts of fleet_repo


def domain_file(name: str, server: str, logins: list[str]) -> str:
    account = name.split(".")[0]
    boxes = "".join(f"  {login}:\n    name: Person {login}\n    password: {HASH}\n"
                    "    welcome: false\n" for login in logins)
    return (f"domain: {name}\naccount: {account}\nserver: {server}\nadmin: {logins[0]}\n"
            f"mailboxes:\n{boxes}")


def fleet_repo(tmp_path: Path, servers: dict[str, str], extra: str = "") -> Path:
    """A repository whose servers are local targets under tmp_path/servers/NAME."""
    repo = tmp_path / "repo"
    (repo / "domains").mkdir(parents=True, exist_ok=True)
    config = "servers:\n" + "".join(
        f"  {name}:\n    target: 'local:{tmp_path / 'servers' / name}'\n{more}"
        for name, more in servers.items())
    accounts = "accounts:\n" + "".join(f"  {a}: {{plan: extended, domains: [{a}.be]}}\n"
                                       for a in NAMES)
    (repo / "mailstate.yaml").write_text(config + accounts + extra)
    return repo


def write(repo: Path, name: str, server: str, logins: list[str]) -> Path:
    path = repo / "domains" / f"{name}.yaml"
    path.write_text(domain_file(name, server, logins))
    return path


def passwd(tmp_path: Path, server: str) -> str:
    path = tmp_path / "servers" / server / PASSWD
    return path.read_text() if path.exists() else ""


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_a_library_user_plans_and_applies_in_a_few_lines(tmp_path: Path) -> None:
    repo = fleet_repo(tmp_path, {"mx1": "", "mx2": ""})
    write(repo, "alpha.be", "mx1", ["alpha"])
    write(repo, "beta.be", "mx2", ["beta"])

    with Manager(repo) as manager, manager.plan() as fleet:
        assert "+ mailbox alpha" in render_text(fleet.plan)
        manager.apply(fleet)
        assert fleet.ok, fleet.errors

    seen: list[tuple[str, str]] = []
    write(repo, "alpha.be", "mx1", ["alpha", "alpha0001"])
    manager = Manager(repo, progress=lambda server, step, _: seen.append((server, step)))
    with manager.apply() as fleet:  # plans, then applies
        assert fleet.ok, fleet.errors
    steps = [step for server, step in seen if server == "mx1" and step != "output"]
    assert steps == ["connecting", "reading", "planned", "uploading", "activating", "checking",
                     "swapping", "reloading", "done"]
    assert ("mx2", "done") in seen and ("mx2", "uploading") not in seen  # nothing to do there
    assert not any(line.startswith("@step") for s in fleet.servers if s.applied
                   for line in s.applied.output)

    assert "alpha:" in passwd(tmp_path, "mx1") and "beta:" in passwd(tmp_path, "mx2")
    with Manager(repo).plan() as again:
        assert again.exit_code(detailed=True) == 0  # applied: nothing left to do


def test_servers_are_read_in_parallel_one_connection_each(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = fleet_repo(tmp_path, {f"mx{i}": "" for i in range(1, 5)})
    for i, name in enumerate(NAMES, 1):
        write(repo, f"{name}.be", f"mx{i}", [name])
    barrier = threading.Barrier(4, timeout=10)  # broken unless all four read at once
    opened: list[str] = []
    real_run, real_init = LocalTransport.run, LocalTransport.__init__

    def init(self: LocalTransport, root: str | Path) -> None:
        opened.append(Path(root).name)
        real_init(self, root)

    def run(self: LocalTransport, script: str, args: list[str], stdin: bytes = b"",
            **kw):  # type: ignore[no-untyped-def]
        if "files.tar" in script:  # the read script
            barrier.wait()
        return real_run(self, script, args, stdin, **kw)

    monkeypatch.setattr(LocalTransport, "__init__", init)
    monkeypatch.setattr(LocalTransport, "run", run)
    with Manager(repo, parallel=4) as manager, manager.plan() as fleet:
        assert fleet.ok, fleet.errors
        manager.apply(fleet)
        assert fleet.ok, fleet.errors
    assert sorted(opened) == ["mx1", "mx2", "mx3", "mx4"]  # one transport per server


def test_a_failing_server_is_reported_and_the_others_carry_on(tmp_path: Path) -> None:
    repo = fleet_repo(tmp_path, {"mx1": "", "mx2": "", "mx3": ""})
    for i, name in enumerate(NAMES[:3], 1):
        write(repo, f"{name}.be", f"mx{i}", [name])
    (tmp_path / "servers").mkdir()
    (tmp_path / "servers" / "mx2").write_text("a file where the server root should be\n")

    code, out, err = cli("apply", str(repo), "--auto-approve")
    assert code == 1
    assert "error: mx2: " in err and "Traceback" not in err
    assert "apply failed on 1 of 3 servers: mx2" in err
    assert "Server mx1" in out and "Server mx3" in out
    assert "alpha:" in passwd(tmp_path, "mx1") and "gamma:" in passwd(tmp_path, "mx3")
    code, out, err = cli("plan", str(repo), "--detailed-exitcode")
    assert code == 1 and "mx2" in err  # an error wins over "changes"
    code, out, err = cli("plan", str(repo), "--detailed-exitcode", "--server", "mx1",
                         "--server", "mx3")
    assert code == 0 and "Server mx2" not in out, err
    code, _, err = cli("plan", str(repo), "--server", "nope")
    assert code == 1 and "no server 'nope'" in err


def test_a_plan_removing_more_than_the_safe_share_needs_force(tmp_path: Path) -> None:
    repo = fleet_repo(tmp_path, {"mx1": "", "mx2": "    max_safe_delete: 60\n"})
    logins = [f"alpha{i:04}" for i in range(1, 11)]
    write(repo, "alpha.be", "mx1", logins)
    write(repo, "beta.be", "mx2", [f"beta{i:04}" for i in range(1, 11)])
    assert cli("apply", str(repo), "--auto-approve")[0] == 0
    # 10 mailboxes and 4 role aliases on each: removing 5 mailboxes is 35%
    write(repo, "alpha.be", "mx1", logins[:5])
    write(repo, "beta.be", "mx2", [f"beta{i:04}" for i in range(1, 6)])

    code, out, err = cli("plan", str(repo))
    assert code == 0 and "- mailbox alpha0006" in out and "- mailbox alpha0010" in out
    assert "apply refuses this without --force: the plan removes or disables 5 of the 14" \
        in out
    code, out, err = cli("apply", str(repo), "--auto-approve")
    assert code == 1 and "mx1: the plan removes or disables 5 of the 14 mailboxes" in err
    assert "alpha0006:" in passwd(tmp_path, "mx1")  # refused: nothing changed there
    assert "beta0006:" not in passwd(tmp_path, "mx2")  # 60% allowed there: applied
    code, out, err = cli("apply", str(repo), "--auto-approve", "--force")
    assert code == 0, err
    assert "alpha0006:" not in passwd(tmp_path, "mx1")


def test_deleting_a_domain_file_needs_force(tmp_path: Path) -> None:
    repo = fleet_repo(tmp_path, {"mx1": ""})
    write(repo, "alpha.be", "mx1", ["alpha"])
    gone = write(repo, "beta.be", "mx1", ["beta"])
    write(repo, "gamma.be", "mx1", ["gamma"])
    assert cli("apply", str(repo), "--auto-approve")[0] == 0
    gone.unlink()
    code, _, err = cli("apply", str(repo), "--auto-approve")
    assert code == 1 and "removes domain beta.be with 1 mailbox (was its file deleted?)" in err
    assert "beta:" in passwd(tmp_path, "mx1")
    assert cli("apply", str(repo), "--auto-approve", "--force")[0] == 0
    assert "beta:" not in passwd(tmp_path, "mx1")


def test_a_server_whose_last_domain_file_is_deleted_is_still_planned(tmp_path: Path) -> None:
    repo = fleet_repo(tmp_path, {"mx1": "", "mx2": ""})
    write(repo, "alpha.be", "mx1", ["alpha"])
    last = write(repo, "beta.be", "mx2", ["beta"])
    assert cli("apply", str(repo), "--auto-approve")[0] == 0
    last.unlink()
    code, out, err = cli("plan", str(repo), "--detailed-exitcode")
    assert code == 2, err
    assert "Server mx2" in out and "- domain beta.be" in out and "- mailbox beta" in out
    assert cli("apply", str(repo), "--auto-approve")[0] == 1  # a deleted file: --force
    assert cli("apply", str(repo), "--auto-approve", "--force")[0] == 0
    assert "beta:" not in passwd(tmp_path, "mx2")
    assert cli("plan", str(repo), "--detailed-exitcode")[0] == 0


def test_a_domain_moved_between_servers_is_shown_as_a_move(tmp_path: Path) -> None:
    repo = fleet_repo(tmp_path, {"mx1": "", "mx2": ""})
    write(repo, "alpha.be", "mx1", ["alpha"])
    write(repo, "beta.be", "mx1", ["beta"])
    write(repo, "gamma.be", "mx2", ["gamma"])
    assert cli("apply", str(repo), "--auto-approve")[0] == 0
    write(repo, "beta.be", "mx2", ["beta"])

    code, out, err = cli("plan", str(repo), "--detailed-exitcode")
    assert code == 2, err
    assert "+ domain beta.be: moved from mx1 (its mail stays there" in out
    assert "- domain beta.be: moved to mx2: mail to it is refused here, mailboxes disabled, " \
           "mail kept" in out
    assert "Move: beta.be from mx1 to mx2" in out
    assert "refuses" not in out  # a move is not a deleted domain file
    code, out, err = cli("apply", str(repo), "--auto-approve")
    assert code == 0, err
    assert "beta:" in passwd(tmp_path, "mx2") and "beta:" not in passwd(tmp_path, "mx1")
    with Manager(repo).plan() as fleet:
        moved = {s.server: s.moved for s in fleet.plan.servers}
    assert moved == {"mx1": {}, "mx2": {}}


def test_the_example_repository_plans_and_applies_on_local_targets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the README shows: every server pointed at a directory, no server needed."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "examples" / "repo", repo)
    monkeypatch.chdir(repo)
    targets = ["--target", "maximusconfessor=local:/tmp/x/mx".replace("/tmp/x", str(tmp_path)),
               "--target", f"gregorius=local:{tmp_path}/gr"]
    code, out, err = cli("plan", *targets, "--detailed-exitcode")
    assert code == 2, err
    assert "Server gregorius" in out and "Server maximusconfessor" in out
    code, out, err = cli("apply", *targets, "--auto-approve")
    assert code == 0, err
    assert "Apply complete." in out
    assert cli("plan", *targets, "--detailed-exitcode")[0] == 0
    # without the targets, the example's servers do not exist: both are reported
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 1 and "maximusconfessor" in err and "gregorius" in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_live_on_a_terminal_and_plain_when_piped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for stream, live in ((io.StringIO(), False), (_Terminal(), True)):
        view = View(NORMAL, err=stream, out=stream)
        view.start(["mx1", "mx2"])
        view("mx1", "reading", "")
        view("mx2", "failed", "mx2: cannot connect")
        view("mx1", "planned", "1 to add, 0 to change, 0 to remove")
        view.stop()
        text = stream.getvalue()
        assert "error: mx2: cannot connect" in text
        if live:
            assert "\x1b[" in text and "\x1b[31m" in text  # redrawn in place, in colour
        else:
            assert "\x1b" not in text
            assert any(line.endswith("mx1: reading") for line in text.splitlines())
    monkeypatch.setenv("NO_COLOR", "1")
    stream = _Terminal()
    view = View(NORMAL, err=stream, out=stream)
    view.start(["mx1"])
    view("mx1", "failed", "mx1: no")
    view.stop()
    assert "\x1b[31m" not in stream.getvalue()
