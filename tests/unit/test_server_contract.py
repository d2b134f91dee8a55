"""The contract with the server scripts: one table (templates/server-contract.sh) of the exit
codes and the stage's meta/ names, which both the scripts and Python read.

Checked here: Python's enums hold exactly the table's names and values, and the shell reads the
same values; the scripts that use the table name no exit code by its number and no meta/ file
by its name, and use every row; Python writes every meta/ file of the table and no other; every
exit code has an outcome message. The read scripts stay outside the contract (the read-only
program embeds server-read.sh byte for byte).
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from importlib.resources import files

import pytest

from mailstate.apply import OUTCOMES, build_stage, control_stage
from mailstate.files.programs import script
from mailstate.files.server_contract import TABLE, Exit, Meta, read_table

from .conftest import LocalServer

TEMPLATES = files("mailstate.templates")
ROWS = read_table()
SCRIPTS = sorted(p.name for p in TEMPLATES.iterdir()
                 if p.name.endswith(".sh") and p.name not in (TABLE, "server-lib.sh"))
USERS = [n for n in SCRIPTS if TEMPLATES.joinpath(TABLE).read_text() in script(n)]
READERS = ["server-read.sh", "virtualmin-read.sh"]

# Where a script would name an exit code by its number: `exit N`, a `fail`/`refuse` call whose
# last argument is N, a default `${2:-N}`.
BARE_CODES = [re.compile(r"\bexit\s+(\d+)"),
              re.compile(r"\b(?:fail|refuse)\s.*\s(\d+)\s*;?\s*\}?\s*$", re.MULTILINE),
              re.compile(r":-(\d+)\}")]


def code(name: str) -> str:
    """A script's text without its comments, its continued lines joined."""
    text = TEMPLATES.joinpath(name).read_text().replace("\\\n", "")
    lines = [re.sub(r"\s# .*$", "", line) for line in text.splitlines()
             if not line.lstrip().startswith("#")]
    return "\n".join(lines)


def bare_codes(text: str) -> set[int]:
    return {int(m[1]) for rx in BARE_CODES for m in rx.finditer(text)} - {0, 1}


def used(text: str, name: str) -> bool:
    return re.search(rf"\$\{{?{name}\b", text) is not None


def test_the_enums_are_the_table() -> None:
    assert {f"EXIT_{e.name}": str(e.value) for e in Exit} == \
        {k: v for k, v in ROWS.items() if k.startswith("EXIT_")}
    assert {f"META_{m.name}": m.value for m in Meta} == \
        {k: v for k, v in ROWS.items() if k.startswith("META_")}
    codes = [v for k, v in ROWS.items() if k.startswith("EXIT_")]
    assert len(set(codes)) == len(codes) and all(0 < int(c) < 256 for c in codes)
    names = [v for k, v in ROWS.items() if k.startswith("META_")]
    assert len(set(names)) == len(names)


def test_the_shell_reads_the_same_values() -> None:
    table = TEMPLATES.joinpath(TABLE).read_text()
    shown = subprocess.run(["sh", "-c", table + "".join(f'echo "{k}=${k}"\n' for k in ROWS)],
                           capture_output=True, text=True, check=True).stdout
    assert shown.splitlines() == [f"{k}={v}" for k, v in ROWS.items()]


def test_a_row_without_its_meaning_is_refused() -> None:
    assert read_table("# a comment\n\nEXIT_X=3  # what it means\n") == {"EXIT_X": "3"}
    for bad in ("EXIT_X=3\n", "EXIT_X=3  # a\nEXIT_X=4  # b\n", "exit 3\n", "META_X='a b'  # c\n"):
        with pytest.raises(ValueError):
            read_table(bad)


def test_the_scripts_that_report_outcomes_have_the_table_in_front() -> None:
    assert set(USERS) >= {"server-activate.sh", "server-push.sh", "server-wait.sh"}
    table = TEMPLATES.joinpath(TABLE).read_text()
    for name in USERS:
        assert script(name).startswith(TEMPLATES.joinpath("server-lib.sh").read_text() + table)
    for name in READERS:
        assert table not in script(name) and not any(used(code(name), k) for k in ROWS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_no_exit_code_is_named_by_its_number(name: str) -> None:
    found = bare_codes(code(name))
    if name in USERS:
        assert not found, f"{name}: exit codes by number, not from {TABLE}: {sorted(found)}"
    else:  # outside the contract: at least never a code that means something else
        assert not found & set(Exit), name


def test_the_check_finds_numbers() -> None:
    assert bare_codes('fail "stale plan; plan \\\nagain" 76\nexit 20\nexit "${2:-10}"\n'
                      .replace("\\\n", "")) == {76, 20, 10}
    assert bare_codes('fail "x" "$EXIT_STALE"\nexit "$EXIT_KILLED"\nexit 0\nsleep 5\n') == set()


def test_no_meta_file_is_named_by_its_name() -> None:
    for name in USERS:
        bare = re.findall(r"\$\{?META\}?/([^$\s\"]+)", code(name))
        assert not bare, f"{name}: meta/ files by name, not from {TABLE}: {bare}"


def test_every_row_is_used_by_a_script() -> None:
    scripts = "\n".join(code(n) for n in USERS)
    assert [k for k in ROWS if not used(scripts, k)] == []


def test_every_exit_code_has_an_outcome() -> None:
    assert set(OUTCOMES) == set(Exit)


def _meta(tar: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        return {n.removeprefix("meta/") for n in archive.getnames() if n.startswith("meta/")}


def test_python_writes_every_meta_file_and_no_other(server: LocalServer) -> None:
    desired, [prep] = server.prepare(server.example())
    written = _meta(build_stage(prep, desired.servers["maximusconfessor"]))
    written |= _meta(control_stage("recover", "/var/lib/mailstate", db_type="hash",
                                   generation="20250101T000000000000Z"))
    written |= _meta(control_stage("rollback", "/var/lib/mailstate", db_type="hash",
                                   rollback="20250101T000000000000Z"))
    commands = {n for n in written if n.startswith(Meta.CMD)}
    assert commands == {f"{Meta.CMD}{s}" for s in ("postfix", "dovecot", "postgrey")}
    assert written - commands == {m.value for m in Meta if m is not Meta.CMD}
