"""`mailstate passwd FILE LOGIN`: the hash written in place, the rest of the file untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mailstate.cli import main
from mailstate.config.password_edit import EditError, read_new_password, set_password, weakness
from mailstate.config.validation import run as validate_run
from mailstate.model.passwords import verify_password

from .conftest import EXAMPLE

GOOD = "Correct-Horse-7-Battery"


def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


def test_the_example_changes_in_one_line_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "monsite.be.yaml"
    path.write_bytes(EXAMPLE.read_bytes())
    result = run("passwd", str(path), "monsite0001", input=GOOD + "\n")
    assert result.exit_code == 0, result.output
    assert "set the password of monsite0001" in result.stdout
    [(old, new)] = changed_lines(EXAMPLE.read_text(), path.read_text())
    assert old.startswith('    password: "{ARGON2ID}$argon2id$') and old.endswith('"\n')
    assert new.startswith('    password: "{ARGON2ID}$argon2id$') and new.endswith('"\n')
    desired, issues = validate_run([str(path)])
    assert desired is not None, issues
    [box] = [m for s in desired.servers.values() for m in s.mailboxes().values()
             if m.login == "monsite0001"]
    assert verify_password(GOOD, box.password)
    assert GOOD not in path.read_text() and GOOD not in result.output


def test_a_comment_after_the_value_crlf_and_odd_layout_are_kept() -> None:
    text = ("domain: x.be   # the domain\r\nmailboxes:\r\n    box1:\r\n"
            "        name:   Box\r\n        password: 'old' # rotated yearly\r\n"
            "        quota: 1G\r\n# end\r\n")
    out = set_password(text, "f", "box1", "{BLF-CRYPT}$2y$10$abc")
    assert out == text.replace("'old'", '"{BLF-CRYPT}$2y$10$abc"')


def test_a_mailbox_without_a_password_gets_one_line_added() -> None:
    text = "domain: x.be\nmailboxes:\n  box1:\n    name: Box   # hi\n  box2:\n    name: B\n"
    out = set_password(text, "f", "box2", "{X}y")
    assert out == (
        "domain: x.be\nmailboxes:\n  box1:\n    name: Box   # hi\n  box2:\n"
        '    password: "{X}y"\n    name: B\n')


@pytest.mark.parametrize("text, login, message", [
    ("mailboxes:\n  a:\n    name: A\n", "b", "no mailbox 'b'"),
    ("mailboxes: {a: {name: A, password: x}}\n", "a", "not a block mapping"),
    ("mailboxes:\n  a:\n    password: |\n      x\n", "a", "not a one-line value"),
    ("mailboxes:\n  a:\n    password: \"x\n      y\"\n", "a", "not a one-line value"),
    ("mailboxes: [\n", "a", "not valid YAML"),
])
def test_what_cannot_be_edited_safely_is_refused(text: str, login: str, message: str) -> None:
    with pytest.raises(EditError, match=message):
        set_password(text, "f", login, "{X}y")


@pytest.mark.parametrize("password, why", [
    ("Short-1", "shorter than 10"),
    ("aaaaaaaaaaaa", "well-known or repetitive"),
    ("Password123", "well-known"),
    ("Tulp-Zeven-7", None),
    ("monsite0001-Xy", "contains 'monsite0001'"),
    ("My-monsite-2026", "contains 'monsite'"),
    ("alllowercaseletters", None),
    ("lowercaseonly", "fewer than three kinds"),
    (" Leading-space-1", "space"),
])
def test_weak_passwords(password: str, why: str | None) -> None:
    found = weakness(password, "monsite0001", "monsite.be")
    assert (found is None) if why is None else (why in (found or "")), found


def test_weak_and_empty_passwords_leave_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "monsite.be.yaml"
    path.write_bytes(EXAMPLE.read_bytes())
    for attempt in ("short\n", "\n", "monsite0001-Abc!\n"):
        result = run("passwd", str(path), "monsite0001", input=attempt)
        assert result.exit_code == 1 and "too weak" in result.stderr, result.output
        assert "Traceback" not in result.output
    assert path.read_bytes() == EXAMPLE.read_bytes()


def test_two_different_answers_on_a_terminal_are_refused() -> None:
    answers = iter([GOOD, GOOD + "x"])
    with pytest.raises(EditError, match="the two passwords differ"):
        read_new_password("box", True, lambda _: next(answers), lambda: "unused\n")
    answers = iter([GOOD, GOOD])
    assert read_new_password("box", True, lambda _: next(answers), lambda: "") == GOOD
    assert read_new_password("box", False, lambda _: "unused", lambda: GOOD + "\r\n") == GOOD


def test_a_planted_link_at_the_old_temporary_name_is_not_written_through(
        tmp_path: Path) -> None:
    """A committed link named like a fixed temporary file, pointing at a git hook, must not
    turn `passwd` into a write of the customer's choosing."""
    folder = tmp_path / "domains" / "evil"
    folder.mkdir(parents=True)
    path = folder / "monsite.be.yaml"
    path.write_bytes(EXAMPLE.read_bytes())
    hook = tmp_path / "hook"
    hook.write_text("#!/bin/sh\necho harmless\n")
    (folder / ".monsite.be.yaml.mailstate-tmp").symlink_to(hook)
    result = run("passwd", str(path), "monsite0001", input=GOOD + "\n")
    assert result.exit_code == 0, result.output
    assert hook.read_text() == "#!/bin/sh\necho harmless\n"
    assert not path.is_symlink() and "monsite0001" in path.read_text()
    assert sorted(p.name for p in folder.iterdir()) == [".monsite.be.yaml.mailstate-tmp",
                                                        "monsite.be.yaml"]


def test_a_domain_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.yaml"
    target.write_bytes(EXAMPLE.read_bytes())
    path = tmp_path / "monsite.be.yaml"
    path.symlink_to(target)
    result = CliRunner().invoke(main, ["passwd", str(path), "monsite0001"],
                                input=GOOD + "\n")
    assert result.exit_code == 1, result.output
    assert "is a symbolic link; a domain file must be a regular file" in result.output
    assert path.is_symlink() and target.read_bytes() == EXAMPLE.read_bytes()
