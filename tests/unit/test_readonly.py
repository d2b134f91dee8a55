"""The read-only key's program, emulated locally the way sshd runs a forced command.

``ForcedCommand`` is a transport that, like sshd with ``command=...`` in authorized_keys,
ignores the command the client sends (only passing it on as SSH_ORIGINAL_COMMAND) and runs
the installed read program instead. A plan through it equals a plan through the normal
transport; an apply and any other command are refused and change nothing. The real sshd
proof is tests/integration/test_readonly_key.py.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailstate.apply import apply_server
from mailstate.cli import main
from mailstate.config.validation import run as validate_run
from mailstate.engine.prepare import prepare
from mailstate.files.programs import authorized_keys_line, program_path
from mailstate.model.layout import Layout
from mailstate.plan import Plan
from mailstate.server.transport import Result, TransportError, sh_command
from mailstate.views.text import render_text

from .conftest import EXAMPLE, LocalServer

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG7example ci-read-only"


class ForcedCommand:
    def __init__(self, root: Path) -> None:
        self.root, self.name, self.round_trips = root, f"forced:{root}", 0

    def run(self, script: str, args: list[str], stdin: bytes = b"",
            on_line: Callable[[str], None] | None = None,
            idle_timeout: float | None = None) -> Result:
        self.round_trips += 1
        program = self.root / program_path(Layout()).lstrip("/")
        env = {**os.environ, "MAILSTATE_ROOT": str(self.root), "MAILSTATE_NO_COMMANDS": "1",
               "SSH_ORIGINAL_COMMAND": sh_command(script, args)}
        done = subprocess.run(["/bin/sh", str(program)], input=stdin, capture_output=True,
                              env=env, check=False)
        return Result(done.returncode, done.stdout, done.stderr)

    def reconnect(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_the_authorized_keys_line_restricts_the_key_to_the_program(tmp_path: Path) -> None:
    assert authorized_keys_line(Layout(), KEY + "\n") == \
        f'restrict,command="/bin/sh /var/lib/mailstate/read-only" {KEY}'
    pub = tmp_path / "ci.pub"
    pub.write_text(KEY + "\n")
    result = CliRunner().invoke(main, ["server-key", "--read-only", "--public-key", str(pub),
                                       str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f'restrict,command="/bin/sh /var/lib/mailstate/read-only" {KEY}\n'
    for bad in ("AAAA only", 'ssh-ed25519 AAAA "x', "ssh-ed25519 AAAA\nssh-rsa BBBB"):
        with pytest.raises(ValueError, match="not an OpenSSH public key"):
            authorized_keys_line(Layout(), bad)


def test_a_plan_through_the_read_program_equals_a_normal_plan(server: LocalServer) -> None:
    path = server.example()
    server.apply(path)  # installs the read program
    assert (server.root / "var/lib/mailstate/read-only").stat().st_mode & 0o777 == 0o755
    path.write_text(EXAMPLE.read_text().replace("quota: 3G", "quota: 2G"))
    desired, issues = validate_run([str(path)])
    assert desired is not None, issues
    [normal] = server.prepare(path)[1]
    forced = prepare(desired.intent("maximusconfessor"), ForcedCommand(server.root))
    assert forced.plan.changes == normal.plan.changes and forced.plan.changes
    assert forced.plan.live_fingerprint == normal.plan.live_fingerprint
    assert render_text(Plan([forced.plan])).replace("forced:", "local:") == \
        render_text(Plan([normal.plan]))

    before = server.contents()
    with pytest.raises(TransportError, match="this SSH key may only read"):
        apply_server(forced, desired.servers["maximusconfessor"])
    assert server.contents() == before
    shell = ForcedCommand(server.root).run("cat /etc/shadow; touch /tmp/x", [])
    assert shell.returncode == 1 and b"may only read" in shell.stderr and not shell.stdout
