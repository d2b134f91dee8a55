"""The command line's own contract: exit codes, no tracebacks, nothing leaking into callers."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailstate.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "monsite.be.yaml"


@pytest.mark.parametrize("args", [
    ["plan", "--no-such-option"],
    ["no-such-command"],
    ["plan", "--format", "yaml"],
    ["hash-password", "--scheme", "MD5"],
    ["plan", "--detailed-exitcode", "--out"],
])
def test_usage_errors_exit_1_not_2(args: list[str]) -> None:
    """2 means "changes present" with --detailed-exitcode: a typo must not read as that."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "Usage:" in result.output or "Error" in result.output


def test_help_and_version_exit_0() -> None:
    assert CliRunner().invoke(main, ["--help"]).exit_code == 0
    assert CliRunner().invoke(main, ["--version"]).exit_code == 0


def test_bcrypt_refuses_long_password_clearly() -> None:
    result = CliRunner().invoke(main, ["hash-password", "--scheme", "BLF-CRYPT"],
                                input="x" * 73 + "\n")
    assert result.exit_code == 1
    assert "at most 72 bytes" in result.output
    assert "Traceback" not in result.output
    ok = CliRunner().invoke(main, ["hash-password", "--scheme", "BLF-CRYPT"],
                            input="x" * 72 + "\n")
    assert ok.exit_code == 0 and ok.output.startswith("{BLF-CRYPT}$2y$")


def test_in_process_call_leaves_garbage_collector_alone() -> None:
    assert gc.isenabled()
    CliRunner().invoke(main, ["validate", str(EXAMPLE)])
    assert gc.isenabled()


def test_console_entry_point_disables_gc_for_its_own_run() -> None:
    code = ("import gc; from mailstate import cli; "
            "cli.main = lambda: print('gc enabled:', gc.isenabled()); cli.entry_point()")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "gc enabled: False"


def test_a_warning_repeated_per_mailbox_is_one_line_with_a_count(tmp_path: Path) -> None:
    """Three logins off the <account>NNNN convention: one line with a count; -v lists each."""
    text = EXAMPLE.read_text()
    hashed = next(line for line in text.splitlines() if "password:" in line)
    boxes = "".join(f"  {name}:\n    name: {name}\n{hashed}\n"
                    for name in ("info", "sales", "jobs"))
    domain = tmp_path / "monsite.be.yaml"
    domain.write_text("domain: monsite.be\naccount: monsite\nplan: extended\nmailboxes:\n"
                      f"  monsite:\n    name: Admin\n{hashed}\n{boxes}")
    short = CliRunner().invoke(main, ["validate", str(domain)])
    assert short.exit_code == 0, short.output
    lines = [line for line in short.output.splitlines() if "convention" in line]
    assert len(lines) == 1, short.output
    assert ":8:3: warning: login 'info' does not follow" in lines[0]
    assert "and 2 more logins of account 'monsite' like it (-v lists each)" in lines[0]
    assert "(3 warnings)" in short.output
    full = CliRunner().invoke(main, ["-v", "validate", str(domain)])
    assert [line.split(": warning: ")[1] for line in full.output.splitlines()
            if "convention" in line] == [
        f"login {name!r} does not follow the convention monsite0001, monsite0002 …"
        for name in ("info", "sales", "jobs")]


def test_an_edited_or_damaged_saved_plan_exits_1_with_the_reason(tmp_path: Path) -> None:
    """`show` and `apply --plan` of an edited or damaged plan file: a clear error, exit 1."""
    import json

    from mailstate.plan import Change, Plan, ServerPlan
    from mailstate.views.json import render_json

    plan = Plan([ServerPlan("mx1", "/nowhere", changes=[
        Change("remove", "mailbox", "a@monsite.be", "monsite.be"),
        Change("add", "mailbox", "b@monsite.be", "monsite.be")])])
    data = json.loads(render_json(plan))
    data["servers"][0]["changes"].pop(0)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps({"format": 1, "servers": [{"changes": 3}]}))
    for path, why in ((edited, "the saved plan was edited since it was made"),
                      (damaged, "a damaged mailstate plan file")):
        for args in (["show", str(path)], ["apply", "--plan", str(path), "--auto-approve",
                                           str(tmp_path / "none.yaml")]):
            result = CliRunner().invoke(main, args)
            assert result.exit_code == 1, result.output
            assert why in result.output and "Traceback" not in result.output
            assert not isinstance(result.exception, Exception) or \
                isinstance(result.exception, SystemExit)
