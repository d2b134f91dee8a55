"""Every file under tests/cases/ run through `mailstate validate`, as a table of inputs.

A case states its expectations in header comments (see tests/cases/README.md). For each case:
exit code 1 (0 for warnings/), no traceback, every expected `file:line:col` and message
fragment printed, no error that was not expected, and nothing written anywhere.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailstate.cli import main
from mailstate.config.yaml_reader import MAX_FILE_BYTES

from .samples import MINIMAL as ADMIN

CASES = Path(__file__).resolve().parents[1] / "cases"
EXPECT = re.compile(r"^# expect(?P<warning>-warning)?: (?P<at>-|\d+(?::\d+)?): (?P<text>.+)$",
                    re.MULTILINE)


@dataclass(frozen=True)
class Expect:
    file: str  # relative to the case
    at: str  # "12:7", "12" or "-"
    text: str
    severity: str

    def matches(self, line: str) -> bool:
        where = f"/{self.file}" if self.at == "-" else f"/{self.file}:{self.at}"
        return f"{where}: {self.severity}: " in line and self.text in line


def expectations(case: Path) -> list[Expect]:
    files = [case] if case.is_file() else sorted(case.rglob("*.yaml"))
    found = []
    for path in files:
        rel = path.name if case.is_file() else path.relative_to(case).as_posix()
        for m in EXPECT.finditer(path.read_text(encoding="utf-8")):
            severity = "warning" if m["warning"] else "error"
            found.append(Expect(rel, m["at"], m["text"], severity))
    return found


def snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "dir" for p in sorted(root.rglob("*"))}


def validate(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """Run `mailstate validate COPY` from an empty working directory; check nothing is written."""
    copy = tmp_path / "in" / case.name
    if case.is_dir():
        shutil.copytree(case, copy)
    else:
        copy.parent.mkdir(parents=True)
        shutil.copyfile(case, copy)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(main, ["validate", str(copy)])
    assert snapshot(tmp_path) == before, "validate wrote or changed a file"
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def check(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    expects = expectations(case)
    assert expects, f"{case.name} states no `# expect:` line"
    exit_code, output = validate(case, tmp_path, monkeypatch)
    lines = output.splitlines()
    for expect in expects:
        assert any(expect.matches(line) for line in lines), f"missing {expect}\n{output}"
    for line in lines:
        if ": error: " in line:
            assert any(e.matches(line) for e in expects), f"unexpected: {line}"
    assert exit_code == code, output


def _cases(folder: str) -> list[Path]:
    return sorted(p for p in (CASES / folder).iterdir() if p.suffix == ".yaml" or p.is_dir())


@pytest.mark.parametrize("case", _cases("invalid"), ids=lambda p: p.stem)
def test_invalid_case(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check(case, tmp_path, monkeypatch, 1)


@pytest.mark.parametrize("case", _cases("warnings"), ids=lambda p: p.stem)
def test_warning_case(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check(case, tmp_path, monkeypatch, 0)


def test_enough_cases() -> None:
    assert len(_cases("invalid")) >= 50


# ------------------------------------------------------------------ generated inputs

GENERATED = {
    "over_size_limit": (ADMIN.encode() + b"# " + b"x" * MAX_FILE_BYTES + b"\n",
                        "-", f"the limit is {MAX_FILE_BYTES}"),
    "not_utf8": (ADMIN.replace("Domain administrator", "Caf\xe9").encode("latin-1"),
                 "5:14", "not UTF-8 text (byte 71)"),
    "raw_nul_byte": (ADMIN.encode().replace(b"Domain", b"Dom\x00ain"), "5",
                     "contains a NUL character"),
    "nested_300k": (b"aliases: " + b"[" * 300_000 + b"]" * 300_000 + b"\n", "1:41",
                    "nested more than 32 levels"),
    "one_long_line": (ADMIN.encode() + b"aliases: {x: [" + b"a@b.be, " * 120_000 + b"]}\n",
                      "7:14", "120000 targets; at most 1000"),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_case(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    content, at, text = GENERATED[name]
    case = tmp_path / "src" / f"{name}.yaml"
    case.parent.mkdir()
    case.write_bytes(content)
    exit_code, output = validate(case, tmp_path / "run", monkeypatch)
    assert Expect(case.name, at, text, "error").matches(output), output
    assert exit_code == 1


@pytest.mark.parametrize("case", ["yaml_unclosed_quote", "billion_laughs", "password_plain"])
def test_python_dash_m(case: str, tmp_path: Path) -> None:
    """The real process: exit 1, the file:line on stderr, no traceback, nothing written."""
    src = CASES / "invalid" / f"{case}.yaml"
    expect = expectations(src)[0]
    proc = subprocess.run([sys.executable, "-P", "-m", "mailstate", "validate", str(src)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert any(expect.matches(line) for line in proc.stderr.splitlines()), proc.stderr
    assert list(tmp_path.iterdir()) == []
