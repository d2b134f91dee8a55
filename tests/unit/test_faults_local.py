"""Faults during apply on the local target: the activation is killed at each of its steps, the
client is killed at random moments, two applies start at once, symbolic links are planted at
managed paths. The same server scripts run here as on a real server.

After each fault the managed files are exactly the old generation or the new one (never some
of each), the next apply completes without --force, no stage (with its password hashes) is
left, and every welcome mail is sent once. Faults are injected with the test-only hook of the
server scripts (MAILSTATE_FAULT, see templates/server-lib.sh) or by signals.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mailstate.apply import apply_server, build_stage, recover_server, run_id
from mailstate.files.programs import script
from mailstate.files.server_contract import Exit
from mailstate.server.transport import TransportError
from tests.waiting import wait_until

from .conftest import EXAMPLE, LocalServer

pytestmark = pytest.mark.faults
CHANGED = ("etc/dovecot/mailstate/passwd", "etc/postfix/mailstate/virtual_aliases",
           "etc/postfix/mailstate/virtual_mailboxes")
HASH = ("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$cA5B6D1nTIlRKuWcU2qt9Q$"
        "y8AONqAfifKKZVjyxj9nHQu2IzUJDKM9StmxylEpdic")
NEW_BOX = f"""  monsite0002:
    name: Sales
    password: "{HASH}"
    welcome: true
"""
STEPS = ["checked", "kept", "journal", "adopted", "prepared", "switched",
         "reload:dovecot", "reload:postfix", "manifest", "committed", "welcome:monsite0002",
         "done"]
BEFORE_COMMIT = STEPS[:STEPS.index("manifest") + 1]
# Trials per random-kill test (two such tests) and concurrent pairs; CI keeps them small,
# MAILSTATE_FAULT_TRIALS=50 gives the 50 random kills of everything (and 50 of the
# client alone).
TRIALS = int(os.environ.get("MAILSTATE_FAULT_TRIALS", "12"))
PAIRS = int(os.environ.get("MAILSTATE_FAULT_PAIRS", "20"))


def changed_example() -> str:
    """Three files change at once: a quota (passwd), an alias, a new mailbox (welcome mail)."""
    text = EXAMPLE.read_text().replace("quota: 3G", "quota: 2G", 1)
    text = text.replace("aliases:\n  frederic:", "aliases:\n  sales: [monsite0001]\n  frederic:")
    return text.replace("\naliases:", "\n" + NEW_BOX + "aliases:", 1) \
        if "\naliases:" in text else text + NEW_BOX


def managed(root: Path) -> dict[str, object]:
    """What decides old or new: every managed file, main.cf, the manifest's and the recorded
    state's content (their generation ids aside)."""
    out: dict[str, object] = {}
    for base in ("etc/postfix", "etc/dovecot", "etc/postgrey", "etc/default"):
        for path in sorted((root / base).rglob("*")) if (root / base).exists() else []:
            if path.is_file():
                out[str(path.relative_to(root))] = path.read_bytes()
    state_dir = root / "var/lib/mailstate"
    for record, key in (("manifest.json", "files"), ("state.json", "state")):
        if (state_dir / record).exists():
            out[record] = json.loads((state_dir / record).read_text())[key]
    return out


def leftovers(root: Path) -> list[str]:
    """Stages, partial generations, a journal, .mailstate-new files: none may stay."""
    found = [str(p.relative_to(root)) for p in root.rglob("*")
             if p.name.startswith("stage.") or p.name.endswith((".partial", ".mailstate-new"))
             or p.name in ("journal", "journal.new")]
    return sorted(found)


def welcome_count(root: Path, login: str = "monsite0002") -> int:
    log = root / "var/lib/mailstate/outbox/sent.log"
    return log.read_text().split().count(login) if log.exists() else 0


def running(root: Path) -> list[str]:
    """The server scripts still at work on this root: a killed client's upload, once complete,
    still starts its activation, which then finishes by itself.

    Every process the local transport starts for this root (the upload, the activation it
    spawns, their children) has MAILSTATE_ROOT=ROOT in its environment from its first
    instruction on, before it records a pid file; the recorded pids are listed too."""
    state_dir = root / "var/lib/mailstate"
    found = []
    for pid_file in [*state_dir.glob("runs/*/pid.*"), *state_dir.glob("stage.*/.pid")]:
        with contextlib.suppress(OSError, ValueError):  # gone, or being written right now
            pid = int(pid_file.name[4:] if pid_file.name != ".pid" else pid_file.read_text())
            if _alive(pid):
                found.append(f"{pid} ({pid_file.relative_to(root)})")
    marker = f"MAILSTATE_ROOT={root.resolve()}".encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):  # gone, or not ours
                if marker in (proc / "environ").read_bytes().split(b"\0") and _alive(
                        int(proc.name)):
                    found.append(f"{proc.name} ({(proc / 'cmdline').read_bytes()[:200]!r})")
    return found


def settle_running(root: Path, timeout: float = 60) -> None:
    """Wait until no upload or activation of this root runs any more."""
    wait_until(lambda: running(root), timeout, f"the server scripts at work on {root} to end",
               until=lambda left: not left)


def _text(path: Path) -> str:
    """A file's text, empty while it does not exist."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Scenario:
    """An applied example, the change to apply, and both outcomes to compare with."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.path = server.example()
        assert server.cli("apply", str(self.path), "--auto-approve").exit_code == 0
        self.old = managed(server.root)
        self.path.write_text(changed_example())
        reference = server.root.parent / "reference"
        shutil.rmtree(reference, ignore_errors=True)
        shutil.copytree(server.root, reference, symlinks=True)
        ref = LocalServer(reference, server.work)
        assert ref.cli("apply", str(self.path), "--auto-approve").exit_code == 0
        self.new = managed(reference)
        assert self.new != self.old and welcome_count(reference) == 1

    def outcome(self) -> str:
        now = managed(self.server.root)
        return "old" if now == self.old else "new" if now == self.new else "mixed"

    def finish(self, welcome_lost_ok: bool = False) -> None:
        """The next apply completes without --force; then nothing is left, mail sent once
        (never twice; with welcome_lost_ok, a run SIGKILLed while sending may have lost it,
        which the recovery then says)."""
        result = self.server.cli("apply", str(self.path), "--auto-approve")
        assert result.exit_code == 0, result.output
        assert self.outcome() == "new"
        assert leftovers(self.server.root) == []
        assert welcome_count(self.server.root) in ((0, 1) if welcome_lost_ok else (1,))
        again = self.server.cli("plan", str(self.path), "--detailed-exitcode")
        assert again.exit_code == 0, again.output


# ------------------------------------------------------------- SIGKILL of the activation


@pytest.mark.parametrize("step", STEPS)
def test_activation_killed_at_each_step_is_completed_or_undone(
        server: LocalServer, step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Scenario(server)
    monkeypatch.setenv("MAILSTATE_FAULT", f"{step}:kill")
    result = server.cli("apply", str(s.path), "--auto-approve")
    monkeypatch.delenv("MAILSTATE_FAULT")
    # the client saw the activation die and completed (after the commit mark) or undid it
    expected = "old" if step in BEFORE_COMMIT else "new"
    assert s.outcome() == expected, result.output
    assert "the activation was killed" in result.output or result.exit_code == 0
    assert (result.exit_code == 0) == (expected == "new"), result.output
    assert leftovers(server.root) == []
    s.finish()


@pytest.mark.parametrize("step", ["kept", "prepared", "switched", "reload:postfix",
                                  "manifest", "committed"])
def test_the_next_run_completes_or_undoes_a_journal_left_by_a_killed_activation(
        server: LocalServer, step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No client is left to recover (it was killed too), nor the watch (as after a power cut):
    the next apply finds the journal."""
    s = Scenario(server)
    desired, [prep] = server.prepare(s.path)
    tar = build_stage(prep, desired.servers["maximusconfessor"])
    monkeypatch.setenv("MAILSTATE_FAULT", f"{step}:kill watch:kill")
    run = run_id()
    result = prep.transport.run(script("server-push.sh", "server-wait.sh"),
                                [prep.layout.state_dir, run, hashlib.sha256(tar).hexdigest()],
                                tar)
    monkeypatch.delenv("MAILSTATE_FAULT")
    assert result.returncode == Exit.KILLED, result.message
    plan = server.cli("plan", str(s.path))
    assert "no changes" not in plan.output
    # before the journal nothing was changed (the partial generation goes with the next run)
    assert ("unfinished apply" in plan.output) == (step != "kept"), plan.output
    s.finish()


@pytest.mark.parametrize("step", ["journal", "prepared", "switched", "reload:postfix",
                                  "committed"])
def test_the_server_completes_or_undoes_a_killed_activation_by_itself(
        server: LocalServer, step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The activation dies (SIGKILL, as the OOM killer does) and no client is left: the watch
    beside it runs the recovery kit of its journal at once; nobody runs mailstate again."""
    s = Scenario(server)
    desired, [prep] = server.prepare(s.path)
    tar = build_stage(prep, desired.servers["maximusconfessor"])
    monkeypatch.setenv("MAILSTATE_FAULT", f"{step}:kill")
    result = prep.transport.run(script("server-push.sh", "server-wait.sh"),
                                [prep.layout.state_dir, run_id(), hashlib.sha256(tar).hexdigest()],
                                tar)
    monkeypatch.delenv("MAILSTATE_FAULT")
    assert result.returncode == Exit.KILLED, result.message
    settle_running(server.root)
    wait_until(lambda: (server.state_dir / "journal").exists(), 30,
               "the watch to complete or undo the journal", until=lambda left: not left)
    assert s.outcome() == ("new" if step == "committed" else "old")
    assert leftovers(server.root) == []
    recovered = "".join(_text(p) for p in server.state_dir.glob("runs/*.recover/out"))
    assert ("completed an unfinished" if step == "committed" else "undid an unfinished") \
        in recovered, recovered
    s.finish()


def _as_plain_files(root: Path) -> None:
    """The server as an older mailstate left it: plain files at the managed paths."""
    for path in root.rglob("*"):
        if path.is_symlink() and "/live/current/files/" in os.readlink(path):
            data = path.read_bytes()
            path.unlink()
            path.write_bytes(data)
    shutil.rmtree(root / "var/lib/mailstate/live")


@pytest.mark.parametrize("step", ["adopted", "prepared", "switched", "committed"])
def test_a_server_with_plain_files_moves_to_the_links_safely(
        server: LocalServer, step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next apply moves a server with plain files to the live generation: killed (with
    its watch) at any step, the daemons read the old or the new files; then it completes."""
    s = Scenario(server)
    _as_plain_files(server.root)
    assert managed(server.root) == s.old
    assert not any(p.is_symlink() for p in (server.root / "etc").rglob("*"))
    monkeypatch.setenv("MAILSTATE_FAULT", f"{step}:kill watch:kill")
    server.cli("apply", str(s.path), "--auto-approve")
    monkeypatch.delenv("MAILSTATE_FAULT")
    settle_running(server.root)
    view = daemons_view(server.root)
    expected = s.new if step == "committed" else s.old  # the client completed or undid it
    assert view == {k: v for k, v in expected.items()
                    if k not in ("manifest.json", "state.json")}
    s.finish(welcome_lost_ok=True)
    links = [p for p in (server.root / "etc").rglob("*") if p.is_symlink()]
    assert len(links) >= len(CHANGED) and all(p.is_file() for p in links)


def test_a_journal_of_an_older_mailstate_still_sends_its_welcome_mails_once(
        server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the envelope list, a journal held NAME.from and NAME.to beside each mail: the
    next run (its newer activate.sh) completes such a journal too."""
    s = Scenario(server)
    desired, [prep] = server.prepare(s.path)
    tar = build_stage(prep, desired.servers["maximusconfessor"])
    # no client left to recover it, nor the watch
    monkeypatch.setenv("MAILSTATE_FAULT", "committed:kill watch:kill")
    result = prep.transport.run(script("server-push.sh", "server-wait.sh"),
                                [prep.layout.state_dir, run_id(), hashlib.sha256(tar).hexdigest()],
                                tar)
    monkeypatch.delenv("MAILSTATE_FAULT")
    assert result.returncode == Exit.KILLED, result.message
    welcome = server.state_dir / "journal/welcome"
    for line in (welcome / "envelopes").read_text().splitlines():
        name, sender, recipient = line.split("\t")
        (welcome / f"{name}.from").write_text(sender)  # no newline, as it was written
        (welcome / f"{name}.to").write_text(recipient)
    (welcome / "envelopes").unlink()
    s.finish()


# ------------------------------------------------------------- SIGKILL of the client


def _client(server: LocalServer, path: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "mailstate", "apply", str(path), "--target", server.target,
         "--auto-approve", *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def daemons_view(root: Path) -> dict[str, object]:
    """What the daemons read: every managed file and main.cf, through mailstate's links (the
    records in the state directory and temporary names aside)."""
    return {k: v for k, v in managed(root).items()
            if k not in ("manifest.json", "state.json") and not k.endswith(".mailstate-new")}


def _killed_at_random(server: LocalServer, seed: int, kill: Callable[[subprocess.Popen], None],
                      recover: bool = False, aim: bool = False) -> dict[str, int]:
    """TRIALS applies from the same old state, each stopped by `kill` at a random moment; with
    `recover`, the journal is completed or undone as the next run would before it plans; with
    `aim`, the moment falls while the activation runs.

    Right after each kill, before any recovery, what the daemons read must be entirely the old
    generation or entirely the new one, and every stage left (it holds password hashes) must
    be root's alone (mode 0700). Returns how many ended old, new and mixed ("old"/"new"/"mixed"
    after recovery), how many were killed while a journal was open ("unfinished"), and how
    many showed a mix or an open stage right after the kill ("mixed at the kill", "open stage")."""
    rng = random.Random(seed)
    s = Scenario(server)
    runs = server.state_dir / "runs"
    old_view = daemons_view(server.root)
    backup = server.root.parent / "backup"
    shutil.copytree(server.root, backup, symlinks=True)
    new_view = daemons_view(server.root.parent / "reference")
    assert old_view != new_view
    outcomes: dict[str, int] = {"old": 0, "new": 0, "mixed": 0, "unfinished": 0,
                                "mixed at the kill": 0, "open stage": 0}
    for _ in range(TRIALS):
        shutil.rmtree(server.root)
        shutil.copytree(backup, server.root, symlinks=True)
        client = _client(server, s.path)
        if aim:  # a moment while the activation runs (about a second here)
            earlier = set(runs.glob("*/pid.*"))
            wait_until(lambda earlier=earlier: set(runs.glob("*/pid.*")) - earlier, 30,
                       "the activation to start", interval=0.01, max_interval=0.02)
            time.sleep(rng.uniform(0, 1.2))
        else:
            time.sleep(rng.uniform(0.3, 2.5))
        kill(client)
        client.wait()
        view = daemons_view(server.root)
        outcomes["mixed at the kill"] += view not in (old_view, new_view)
        outcomes["unfinished"] += (server.state_dir / "journal").exists()
        outcomes["open stage"] += sum((p.stat().st_mode & 0o077) != 0
                                      for p in server.state_dir.glob("stage.*"))
        settle_running(server.root)
        if recover:
            _, [prep] = server.prepare(s.path)
            if prep.snapshot.journal:
                recover_server(prep)
        outcomes[s.outcome()] += 1
        s.finish(welcome_lost_ok=recover)
    return outcomes


def test_client_killed_at_random_moments(server: LocalServer) -> None:
    outcomes = _killed_at_random(server, 9, lambda client: client.send_signal(signal.SIGKILL))
    print("client SIGKILL outcomes:", outcomes)
    assert outcomes["mixed"] == outcomes["mixed at the kill"] == outcomes["open stage"] == 0


def _pids(root: Path) -> set[int]:
    return {int(entry.split()[0]) for entry in running(root)}


def test_activation_and_client_killed_at_random_moments(server: LocalServer) -> None:
    """SIGKILL of everything (the client, the upload, the activation, its watch and any
    recovery: as a power cut does) at a random moment: what the daemons read is old or new
    at that instant, and the next run finishes or undoes the journal, then the apply
    completes."""

    def kill_all(client: subprocess.Popen) -> None:
        client.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 30
        while pids := _pids(server.root):  # every process at work on this root, until none
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            assert time.monotonic() < deadline, f"still running: {pids}"

    outcomes = _killed_at_random(server, 10, kill_all, recover=True, aim=True)
    print("activation+client SIGKILL outcomes:", outcomes)
    assert outcomes["mixed"] == outcomes["mixed at the kill"] == outcomes["open stage"] == 0


# ------------------------------------------------------------- two applies at once


def test_two_applies_of_different_changes_at_the_same_instant(server: LocalServer) -> None:
    """Both read the same live state, then activate at the same instant (two threads): one
    wins whole, the other is refused as stale; never some files of each."""
    s = Scenario(server)
    other = server.domain(EXAMPLE.read_text().replace("quota: 3G", "quota: 1G", 1), "other.yaml")
    ref = server.root.parent / "reference-other"
    backup = server.root.parent / "backup"
    shutil.copytree(server.root, backup, symlinks=True)
    shutil.rmtree(ref, ignore_errors=True)
    shutil.copytree(server.root, ref, symlinks=True)
    assert LocalServer(ref, server.work).cli("apply", str(other), "--auto-approve").exit_code == 0
    other_new = managed(ref)
    results = {"first wins": 0, "second wins": 0, "mixed": 0}
    odd: list[str] = []
    for _ in range(PAIRS):
        shutil.rmtree(server.root)
        shutil.copytree(backup, server.root, symlinks=True)
        plans = [server.prepare(s.path), server.prepare(other)]
        start = threading.Barrier(2)
        errors: list[str | None] = [None, None]

        def go(i: int, plans: list = plans, start: threading.Barrier = start,  # type: ignore[type-arg]
               errors: list[str | None] = errors) -> None:
            desired, [prep] = plans[i]
            start.wait()
            try:
                apply_server(prep, desired.servers["maximusconfessor"])
            except TransportError as exc:
                errors[i] = str(exc)

        threads = [threading.Thread(target=go, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        now = managed(server.root)
        refused = [e is not None for e in errors]
        if now == s.new and refused == [False, True]:
            results["first wins"] += 1
        elif now == other_new and refused == [True, False]:
            results["second wins"] += 1
        else:
            results["mixed"] += 1
            odd.append(f"refused {refused}, errors {errors}")
        for e in errors:
            assert e is None or "the plan is stale" in e, e
        assert leftovers(server.root) == []
    print("concurrent applies:", results)
    assert results["mixed"] == 0, "\n".join(odd)


# ------------------------------------------------------------- planted symbolic links


LINK_AT = ["etc/dovecot/mailstate", "etc/postfix/mailstate/virtual_aliases",
           "etc/dovecot/mailstate/passwd.mailstate-new", "etc/postfix", "var/lib/mailstate",
           "var/lib/mailstate/lock", "var/lib/mailstate/manifest.json",
           "var/lib/mailstate/generations"]


@pytest.mark.parametrize("where", LINK_AT)
def test_a_planted_symlink_is_refused_and_nothing_is_written_through_it(
        server: LocalServer, where: str, tmp_path: Path) -> None:
    s = Scenario(server)
    before = managed(server.root)
    outside = tmp_path / "outside"
    target = server.root / where
    existed = target.exists()
    if target.is_dir():  # its files as the daemons read them (mailstate's links resolved),
        # the state directory as it is (its live/current link is relative to it)
        shutil.copytree(target, outside, symlinks=where.startswith("var/lib/mailstate"))
        shutil.rmtree(target)
    elif target.exists():
        outside.write_bytes(target.read_bytes())
        target.unlink()
    else:
        outside.write_bytes(b"not yours\n")
    before_outside = {str(p): p.read_bytes() for p in [outside, *outside.rglob("*")]
                      if p.is_file()}
    target.symlink_to(outside)
    result = server.cli("apply", str(s.path), "--auto-approve")
    assert result.exit_code == 1, result.output
    assert "symbolic link" in result.output and "nothing was changed" in result.output
    after_outside = {str(p): p.read_bytes() for p in [outside, *outside.rglob("*")]
                     if p.is_file()}
    assert after_outside == before_outside  # nothing written through the link
    target.unlink()
    if outside.is_dir():
        shutil.copytree(outside, target, symlinks=True)
    elif existed:
        target.write_bytes(outside.read_bytes())
    assert managed(server.root) == before
    s.finish()


def test_a_group_writable_directory_is_refused(server: LocalServer) -> None:
    s = Scenario(server)
    (server.root / "etc/postfix/mailstate").chmod(0o775)
    result = server.cli("apply", str(s.path), "--auto-approve")
    assert result.exit_code == 1
    assert "/etc/postfix/mailstate is writable by group or others (mode 775)" in result.output
    assert s.outcome() == "old"


# ------------------------------------------------------------- the lock


def test_a_held_lock_names_its_holder_and_unlock_refuses_while_it_runs(
        server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Scenario(server)
    monkeypatch.setenv("MAILSTATE_FAULT", "kept:pause=6")
    first = _client(server, s.path)
    holder = server.state_dir / "lock.holder"
    # The holder line is written after the lock is taken, then the run pauses after "kept".
    wait_until(lambda: _text(holder), 20,
               "the first apply to hold the lock and name itself in lock.holder",
               until=lambda text: text.endswith("\n"), max_interval=0.1)
    monkeypatch.delenv("MAILSTATE_FAULT")
    second = server.cli("apply", str(s.path), "--auto-approve", "--lock-timeout", "1")
    assert second.exit_code == 1
    assert "another mailstate apply is running on this server" in second.output
    assert "held by pid " in second.output and "(client pid " in second.output
    refused = server.cli("unlock", str(s.path))
    assert refused.exit_code == 1 and "not stale: a running apply holds the lock" in refused.output
    assert first.wait(timeout=60) == 0
    assert s.outcome() == "new"


def test_unlock_releases_the_record_of_a_killed_apply(server: LocalServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    s = Scenario(server)
    # the watch is stopped too (or it would recover the run, and release the lock, at once)
    monkeypatch.setenv("MAILSTATE_FAULT", "journal:pause=30 watch:kill")
    client = _client(server, s.path)
    holder = server.state_dir / "lock.holder"
    wait_until(lambda: (server.state_dir / "journal").exists(), 20,
               "the activation to write its journal (then it pauses)", max_interval=0.1)
    monkeypatch.delenv("MAILSTATE_FAULT")
    for pid_file in (server.state_dir / "runs").glob("*/pid.*"):
        if _alive(int(pid_file.name[4:])):
            os.kill(int(pid_file.name[4:]), signal.SIGKILL)
    client.kill()
    client.wait()
    settle_running(server.root)
    assert holder.exists()
    released = server.cli("unlock", str(s.path))
    assert released.exit_code == 0, released.output
    assert "released the lock left by a run that is gone: pid " in released.output
    assert "unfinished apply" in released.output
    assert not holder.exists()
    s.finish()


# ------------------------------------------------------------- a full disk


def _mount_tmpfs(where: Path, kib: int) -> None:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k,mode=700", "tmpfs", str(where)],
                   check=True)


def _used_kib(where: Path) -> int:
    st = os.statvfs(where)
    return (st.f_blocks - st.f_bfree) * st.f_frsize // 1024


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_leaves_old_or_new_and_says_which(server: LocalServer) -> None:
    """The target root on a tmpfs with 0 to 460 KiB free: the upload, keeping the generation
    or preparing the new files runs out of space. Each time the files are all old (and apply
    says nothing was changed) or all new (apply succeeded); nothing is left behind."""
    s = Scenario(server)
    disk = server.root.parent / "disk"
    _mount_tmpfs(disk, 64 * 1024)
    try:
        shutil.copytree(server.root, disk / "root", symlinks=True)
        used = _used_kib(disk)
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    seen: dict[str, int] = {"old": 0, "new": 0, "mixed": 0}
    for free in range(0, 480, 20):
        _mount_tmpfs(disk, used + free + 4)
        try:
            root = disk / "root"
            shutil.copytree(server.root, root, symlinks=True)
            target = LocalServer(root, server.work)
            result = target.cli("apply", str(s.path), "--auto-approve")
            now = managed(root)
            outcome = "old" if now == s.old else "new" if now == s.new else "mixed"
            seen[outcome] += 1
            if result.exit_code == 0:
                assert outcome == "new", result.output
            else:
                assert outcome == "old", result.output
                assert "nothing was changed" in result.output, result.output
            assert leftovers(root) == [], (free, result.output)
        finally:
            subprocess.run(["umount", str(disk)], check=True)
    print("full disk outcomes:", seen)
    assert seen["mixed"] == 0 and seen["old"] > 0 and seen["new"] > 0


# ------------------------------------------------------------- uploads and stages


def test_a_stage_left_by_a_killed_upload_is_removed_by_the_next_run(server: LocalServer) -> None:
    s = Scenario(server)
    gone = subprocess.Popen(["true"])
    gone.wait()
    stage = server.state_dir / "stage.killed1"
    (stage / "files/etc/dovecot/mailstate").mkdir(parents=True)
    (stage / "files/etc/dovecot/mailstate/passwd").write_text("monsite:{ARGON2ID}$argon2id$x\n")
    (stage / ".pid").write_text(f"{gone.pid}\n")
    result = server.cli("apply", str(s.path), "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "removed the stage of an interrupted apply (stage.killed1)" in result.output
    assert not stage.exists() and leftovers(server.root) == []


def test_an_incomplete_upload_is_refused_and_removed(server: LocalServer) -> None:
    s = Scenario(server)
    desired, [prep] = server.prepare(s.path)
    tar = build_stage(prep, desired.servers["maximusconfessor"])
    result = prep.transport.run(script("server-push.sh", "server-wait.sh"),
                                [prep.layout.state_dir, run_id(),
                                 hashlib.sha256(tar).hexdigest()], tar[:len(tar) // 2])
    assert result.returncode == Exit.NOT_STORED
    assert "the upload is incomplete (checksum mismatch); nothing was changed" in result.message
    assert s.outcome() == "old" and leftovers(server.root) == []


def test_a_mail_directory_in_debians_mail_spool_is_refused_with_what_to_do(
        server: LocalServer) -> None:
    """/var/mail on Debian is root:mail 2775: a mail directory made inside it could be
    swapped for a link by the group; the refusal names the setting and the command."""
    spool = server.root / "var/mail"
    spool.mkdir(parents=True)
    spool.chmod(0o2775)
    repo = server.work / "provider"
    (repo / "domains").mkdir(parents=True)
    (repo / "mailstate.yaml").write_text(
        f"servers:\n  maximusconfessor:\n    target: '{server.target}'\n"
        "    layout: {vmail_dir: /var/mail/vhosts}\n"
        "accounts:\n  monsite: {plan: recommended, domains: [monsite.be, monsite.com]}\n")
    (repo / "domains/monsite.be.yaml").write_text(
        EXAMPLE.read_text().replace("plan: recommended", ""))
    result = server.cli("apply", str(repo), "--auto-approve", target=False)
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "/var/mail is writable by group or others (mode 2775)" in text
    assert "layout: {vmail_dir: /var/vmail}" in text
    assert "'chmod g-w,o-w /var/mail'" in text and "nothing was changed" in text
    assert not (server.root / "var/mail/vhosts").exists()
    assert not (server.root / "etc/dovecot/mailstate").exists()
    spool.chmod(0o755)  # the command it names: then the same apply goes through
    again = server.cli("apply", str(repo), "--auto-approve", target=False)
    assert again.exit_code == 0, again.output
