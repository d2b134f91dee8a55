"""The benchmark's clock of the activation (MAILSTATE_TIMES=1, read by bench/steps.py).

With it, server-activate.sh prints one "mailstate-time STEP MS" line on stderr per step, so a
first apply can be broken down (checks, swap, each reload, probe, welcome mails); without it,
nothing. It runs the very scripts a server runs, on the local target.
"""

from __future__ import annotations

import hashlib

import pytest

from mailstate.apply import build_stage, run_id
from mailstate.files.programs import script
from mailstate.server.transport import Result

from .conftest import LocalServer

# Every step of an apply on the local target, in order (the server's checks with postmap,
# doveconf and sievec are timed too where those programs run: not here).
STEPS = ["lock", "recover", "safe", "compare", "check:mail_dir", "kept", "journal", "prepared",
         "link", "swap", "postconf", "reload:postfix", "reload:dovecot", "reload:postgrey", "probe",
         "commit", "welcome", "done"]


def first_apply(server: LocalServer) -> Result:
    desired, [prep] = server.prepare(server.example())
    assert prep.plan.welcome and set(prep.plan.reloads) == {"postfix", "dovecot", "postgrey"}
    tar = build_stage(prep, desired.servers["maximusconfessor"])
    return prep.transport.run(script("server-push.sh", "server-wait.sh"),
                              [prep.layout.state_dir, run_id(), hashlib.sha256(tar).hexdigest()],
                              tar)


def times(result: Result) -> list[tuple[str, int]]:
    """The (STEP, MS) of each "mailstate-time STEP MS" line on stderr, in order."""
    lines = result.stderr.decode().splitlines()
    return [(name, int(ms)) for line in lines if line.startswith("mailstate-time ")
            for _, name, ms in [line.split(" ")]]


def test_every_step_of_a_first_apply_is_timed(server: LocalServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILSTATE_TIMES", "1")
    result = first_apply(server)
    assert result.returncode == 0, result.message
    timed = times(result)
    assert [name for name, _ in timed] == STEPS
    assert all(ms >= 0 for _, ms in timed)
    assert "generation" in result.stdout.decode()  # the apply itself went through


def test_without_the_switch_nothing_is_timed(server: LocalServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILSTATE_TIMES", raising=False)
    result = first_apply(server)
    assert result.returncode == 0, result.message
    assert b"mailstate-time" not in result.stderr + result.stdout
