"""Every repository under tests/cases/hostile/ run through `mailstate validate`, as a table.

Each case is a small repository of two or three customers in which one file (or one change)
tries to reach beyond its account. Expectations are `# expect:` header comments, as for the
invalid cases (tests/cases/README.md). A case with a `change.txt` is a pull request: the
driver commits everything but the `changed:` files as the base (a `FILE.base` beside a changed
file is its content at the base), removes the `deleted:` files, then runs `validate --base
BASE` (plus `args:`), with the changed files as arguments when the case checks `--changed-by`
(else the repository: then git alone says what changed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailstate.cli import main

from .samples import MINIMAL
from .test_invalid_cases import CASES, expectations, snapshot

HOSTILE = sorted(p for p in (CASES / "hostile").iterdir() if p.is_dir())


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c",
                           "user.email=t@example.net", *args], check=True, capture_output=True,
                          text=True).stdout


def _pull_request(repo: Path) -> list[str]:
    """Turn the copy into a git repository whose last commit is the base; return the CLI
    arguments that validate the change."""
    spec = dict(line.split(": ", 1) for line in (repo / "change.txt").read_text().splitlines())
    (repo / "change.txt").unlink()
    changed = spec.get("changed", "").split()
    deleted = spec.get("deleted", "").split()
    kept = {}
    for rel in changed:
        path = repo / rel
        kept[rel] = path.read_bytes()
        base = path.with_name(path.name + ".base")
        if base.exists():
            base.rename(path)
        else:
            path.unlink()
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    sha = _git(repo, "rev-parse", "HEAD").strip()
    for rel, data in kept.items():
        (repo / rel).write_bytes(data)
    for rel in deleted:
        (repo / rel).unlink()
    args = spec.get("args", "").split()
    targets = [str(repo / rel) for rel in changed] if "--changed-by" in args else []
    targets = targets or [str(repo)]
    return ["validate", "--base", sha, *args, *targets]


@pytest.mark.parametrize("case", HOSTILE, ids=lambda p: p.name)
def test_hostile_case(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expects = expectations(case)
    assert expects, f"{case.name} states no `# expect:` line"
    repo = tmp_path / "in" / case.name
    shutil.copytree(case, repo)
    args = _pull_request(repo) if (repo / "change.txt").exists() else ["validate", str(repo)]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = snapshot(repo)
    result = CliRunner().invoke(main, args)
    assert snapshot(repo) == before, "validate wrote or changed a file"
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    lines = result.output.splitlines()
    for expect in expects:
        assert any(expect.matches(line) for line in lines), f"missing {expect}\n{result.output}"
    for line in lines:
        if ": error: " in line:
            assert any(e.matches(line) for e in expects), f"unexpected: {line}"
    assert result.exit_code == 1, result.output


def test_every_attack_has_a_case() -> None:
    assert len(HOSTILE) >= 20


def test_validate_refuses_what_render_refuses(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever slips past the schema and the rules, render's own refusal (the last check
    before a server) makes `validate` fail too, not only `apply`."""
    import mailstate.files.render

    path = tmp_path / "monsite.be.yaml"
    path.write_text(MINIMAL)
    ok = CliRunner().invoke(main, ["validate", str(path)])
    assert ok.exit_code == 0, ok.output

    def refuse(*args: object, **kwargs: object) -> None:
        raise ValueError("cannot be a passwd-file password hash (value not shown)")

    monkeypatch.setattr(mailstate.files.render, "render", refuse)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert "apply would refuse these files: cannot be a passwd-file password hash" in \
        result.output


def test_a_change_to_ones_own_files_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same check lets a customer's change to its own folder through, new file or edit."""
    repo = tmp_path / "repo"
    shutil.copytree(CASES / "hostile" / "changed_by_edits_the_config", repo)
    (repo / "change.txt").unlink()
    config = repo / "mailstate.yaml"
    config.write_text(config.read_text().split("\n", 1)[1])  # without its `# expect:`
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    own = repo / "domains" / "evil" / "evil.be.yaml"
    own.write_text(own.read_text() + "aliases:\n  info: [evil@evil.be]\n")
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(main, ["validate", "--base", "HEAD", "--changed-by", "evil"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["validate", "--base", "HEAD", "--changed-by", "victim"])
    assert result.exit_code == 1
    assert "this file belongs to account 'evil'" in result.output
    result = CliRunner().invoke(main, ["validate", "--base", "no-such-rev"])
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_a_symbolic_link_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A domain file (or an account folder) that is a link to a file outside the repository
    would have validate read it and quote it in errors on a CI machine."""
    secret = tmp_path / "secret"
    secret.write_text("token: do-not-print-me\n")
    repo = tmp_path / "repo"
    shutil.copytree(CASES / "hostile" / "changed_by_edits_the_config", repo)
    config = repo / "mailstate.yaml"
    config.write_text(config.read_text().split("\n", 1)[1])
    (repo / "domains" / "evil" / "leak.yaml").symlink_to(secret)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "other.yaml").write_text("token: do-not-print-me\n")
    (repo / "domains" / "victim").symlink_to(outside)
    result = CliRunner().invoke(main, ["validate", str(repo)])
    assert result.exit_code == 1
    assert "do-not-print-me" not in result.output and "token" not in result.output
    assert result.output.count("a symbolic link; a domain file must be a regular file") == 2


def _merged_repository(tmp_path: Path, nested: bool = False) -> Path:
    """A repository (git) after a customer's `mailstate.yaml` was merged into its folder:
    the planted config names a server the root config does not have. `nested`: the
    repository is a folder of a larger git repository."""
    top = tmp_path / "top"
    repo = top / "ops" if nested else top
    shutil.copytree(CASES / "hostile" / "config_planted_in_account_folder", repo)
    planted = repo / "domains" / "evil" / "mailstate.yaml"
    planted.write_text(planted.read_text().replace("mx1:", "evil9:"))
    own = repo / "domains" / "evil" / "evil.be.yaml"
    own.write_text(own.read_text().replace("server: mx1", "server: evil9"))
    _git(top, "init", "-q")
    _git(top, "add", "-A")
    _git(top, "commit", "-qm", "merged")
    return repo


@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize("args", [["domains/evil/evil.be.yaml"], ["domains/evil"],
                                  ["domains/evil/mailstate.yaml"], []])
def test_a_config_in_a_customers_folder_is_never_obeyed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str],
        nested: bool) -> None:
    """`validate domains/<account>/x.yaml` (or the folder, or the planted file itself) uses
    the config at the repository root, never one planted beside the file."""
    repo = _merged_repository(tmp_path, nested)
    for cwd in (repo, repo / "domains" / "evil"):
        monkeypatch.chdir(cwd)
        shown = [str(Path(os.path.relpath(repo / a, cwd))) for a in args]
        result = CliRunner().invoke(main, ["validate", *shown])
        assert result.exit_code == 1, result.output
        assert "mailstate.yaml" in result.output and "never used" in result.output, \
            result.output
        assert "Traceback" not in result.output
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(main, ["validate", "domains/evil/evil.be.yaml"])
    assert "evil9" in result.output  # the root config has no such server


def test_a_file_that_is_not_a_domain_file_among_them_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(CASES / "hostile" / "changed_by_edits_the_config", repo)
    (repo / "change.txt").unlink()
    config = repo / "mailstate.yaml"
    config.write_text(config.read_text().split("\n", 1)[1])
    monkeypatch.chdir(repo)
    assert CliRunner().invoke(main, ["validate"]).exit_code == 0
    (repo / "domains" / "evil" / "notes.txt").write_text("hello\n")
    (repo / "domains" / "README.md").write_text("hello\n")
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 1
    for name in ("domains/evil/notes.txt", "domains/README.md"):
        assert f"{name}: error: not a domain file: only domain files" in result.output


def test_a_standalone_domain_file_needs_no_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from .conftest import REPO

    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(main, ["validate", "examples/monsite.be.yaml"])
    assert result.exit_code == 0, result.output


def _base_repository(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "repo"
    shutil.copytree(CASES / "hostile" / "changed_by_edits_the_config", repo)
    (repo / "change.txt").unlink()
    config = repo / "mailstate.yaml"
    config.write_text(config.read_text().split("\n", 1)[1])
    (repo / "CODEOWNERS").write_text("* @operator\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    return repo, _git(repo, "rev-parse", "HEAD").strip()


@pytest.mark.parametrize("committed", [False, True])
@pytest.mark.parametrize("named", [False, True])
def test_changed_by_refuses_a_link_to_the_customers_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, committed: bool, named: bool) -> None:
    """A pull request that replaces CODEOWNERS (or adds a domain file) with a link into (or
    out of) the customer's folder is refused, by its path in git, never resolved."""
    repo, base = _base_repository(tmp_path)
    (repo / "CODEOWNERS").unlink()
    (repo / "CODEOWNERS").symlink_to("domains/evil/evil.be.yaml")
    (repo / "domains" / "evil" / "other.be.yaml").symlink_to("../../mailstate.yaml")
    if committed:
        _git(repo, "add", "-A")
        _git(repo, "commit", "-qm", "change")
    monkeypatch.chdir(repo)
    files = ["CODEOWNERS", "domains/evil/other.be.yaml"] if named else []
    result = CliRunner().invoke(main, ["validate", "--base", base, "--changed-by", "evil",
                                       *files])
    assert result.exit_code == 1, result.output
    for name in ("CODEOWNERS", "domains/evil/other.be.yaml"):
        assert f"{name}: error: this change makes {name} a symbolic link" in result.output, \
            result.output


def test_changed_by_refuses_a_planted_config_and_what_is_not_a_domain_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, base = _base_repository(tmp_path)
    evil = repo / "domains" / "evil"
    (evil / "mailstate.yaml").write_text("domains: .\n")
    (evil / "deeper").mkdir()
    (evil / "deeper" / "x.yaml").write_text("domain: x.be\n")
    (evil / ".hidden.yaml").write_text("domain: x.be\n")
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(main, ["validate", "--base", base, "--changed-by", "evil"])
    assert result.exit_code == 1, result.output
    for name in ("mailstate.yaml", "deeper/x.yaml", ".hidden.yaml"):
        assert f"domains/evil/{name}: error: this change touches" in result.output, \
            result.output


def test_a_file_name_that_is_not_utf8_is_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, base = _base_repository(tmp_path)
    name = os.path.join(os.fsencode(repo / "domains" / "evil"), b"\xff.yaml")
    with open(name, "wb") as f:
        f.write(b"domain: x.be\n")
    monkeypatch.chdir(repo)
    for extra in ([], ["--changed-by", "evil"]):
        result = CliRunner().invoke(main, ["validate", "--base", base, *extra])
        assert result.exit_code == 1, result.output
        assert "a file whose name is not UTF-8; rename it" in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
