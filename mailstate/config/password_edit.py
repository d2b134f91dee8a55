"""`mailstate passwd FILE LOGIN`: a new password's hash written into a domain file in place.

A domain file is a reviewed document: its comments and layout are the customer's, and a diff
of a password change should be one line. So the file is not re-dumped: ruamel.yaml's round-trip
loader finds where the mailbox's ``password:`` value is, that one line is rewritten (or one line
added when the mailbox had no password), and the result is loaded again and compared with the
original, so that the edit provably changed that password and nothing else.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailstate.model.passwords import DEFAULT_SCHEME, hash_password

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError

MIN_LENGTH = 10
PASSPHRASE_LENGTH = 16  # this long, any mix of characters will do
COMMON = frozenset({
    "password", "passw0rd", "password1", "password123", "123456789", "1234567890",
    "qwertyuiop", "azertyuiop", "iloveyou", "welcome123", "letmein123", "admin12345",
    "changeme123", "wachtwoord", "motdepasse", "p@ssw0rd123",
})


class EditError(Exception):
    """The file cannot be edited safely; the message says why and what to do."""


def weakness(password: str, login: str, domain: str = "") -> str | None:
    """Why a password is too weak for a mailbox on the internet, or None when it is not."""
    if len(password) < MIN_LENGTH:
        return f"it is shorter than {MIN_LENGTH} characters"
    if password.strip() != password or any(not ch.isprintable() for ch in password):
        return "it starts or ends with a space, or holds a control character"
    lowered = password.lower()
    if lowered in COMMON or len(set(lowered)) < 4:
        return "it is a well-known or repetitive password"
    for part in (login, domain.split(".")[0] if domain else ""):
        if len(part) >= 4 and part.lower() in lowered:
            return f"it contains {part!r}"
    classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]",
                                                         r"[^A-Za-z0-9]"))
    if len(password) < PASSPHRASE_LENGTH and classes < 3:
        return (f"it mixes fewer than three kinds of characters (lower case, upper case, "
                f"digits, others); use three, or at least {PASSPHRASE_LENGTH} characters")
    return None


def _load(text: str, path: str) -> Any:
    yaml = YAML(typ="rt")
    try:
        return yaml.load(io.StringIO(text))
    except YAMLError as exc:
        raise EditError(f"{path}: not valid YAML ({exc}); fix it first (`mailstate validate`)")\
            from None


def _without_password(data: Any, login: str) -> Any:
    """Plain data of the file with the mailbox's password left out, to compare two versions."""
    def plain(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: plain(v) for k, v in node.items()}
        if isinstance(node, list):
            return [plain(v) for v in node]
        return node

    out = plain(data)
    out["mailboxes"][login].pop("password", None)
    return out


def _after_scalar(rest: str) -> str:
    """What follows a one-line scalar on its line (spaces and a comment), kept as it was."""
    if rest[:1] in ("'", '"'):
        quote, i = rest[0], 1
        while i < len(rest):
            if rest[i] == "\\" and quote == '"':
                i += 2
                continue
            if rest[i] == quote:
                if quote == "'" and rest[i + 1:i + 2] == "'":
                    i += 2
                    continue
                return rest[i + 1:]
            i += 1
        return ""  # not closed on this line: the check after the edit refuses it
    hash_at = rest.find(" #")
    return rest[hash_at:] if hash_at >= 0 else ""


def set_password(text: str, path: str, login: str, hashed: str) -> str:
    """The file's text with LOGIN's password set to `hashed`; only that line differs."""
    data = _load(text, path)
    boxes = data.get("mailboxes") if isinstance(data, CommentedMap) else None
    if not isinstance(boxes, CommentedMap) or login not in boxes:
        known = ", ".join(boxes) if isinstance(boxes, CommentedMap) else "none"
        raise EditError(f"{path}: no mailbox {login!r} under `mailboxes:` (mailboxes: {known})")
    box = boxes[login]
    if not isinstance(box, CommentedMap) or box.fa.flow_style() or not box:
        raise EditError(f"{path}: mailbox {login!r} is not a block mapping (`{login}:` with "
                        "its fields on the lines below); write it that way first")
    lines = text.splitlines(keepends=True)
    value = f'"{hashed}"'  # a hash holds no quote or backslash; it starts with "{"
    if "password" in box:
        line, col = box.lc.value("password")
        old = lines[line]
        ending = old[len(old.rstrip("\r\n")):]
        lines[line] = old[:col] + value + _after_scalar(old[:len(old) - len(ending)][col:]) \
            + ending
    else:
        first = next(iter(box))
        line, col = box.lc.key(first)
        ending = "\r\n" if lines[line].endswith("\r\n") else "\n"
        lines.insert(line, " " * col + "password: " + value + ending)
    result = "".join(lines)
    try:
        again = _load(result, path)
        same = (again["mailboxes"][login]["password"] == hashed and
                _without_password(again, login) == _without_password(data, login))
    except (EditError, KeyError, TypeError):
        same = False
    if not same:
        raise EditError(f"{path}: the password of {login!r} is not a one-line value mailstate "
                        "can replace safely (a block or multi-line scalar?); put it on one "
                        "line as `password: \"...\"` and run again")
    return result


def read_new_password(login: str, interactive: bool, ask: Callable[[str], str],
                      readline: Callable[[], str]) -> str:
    """Ask twice on a terminal (refusing two different answers), else read one line."""
    if not interactive:
        return readline().rstrip("\r\n")
    password = ask(f"New password for {login}")
    if ask("Again") != password:
        raise EditError("the two passwords differ; nothing was changed")
    return password


def change_password(path: Path, login: str, password: str, scheme: str = DEFAULT_SCHEME) -> None:
    """Check, hash and write LOGIN's new password into the domain file at `path` in place.

    Nothing is written through a link a customer could have committed: a domain file (or its
    folder) that is a symbolic link is refused, and the new content goes to a temporary file
    that `mkstemp` creates (exclusively, never following a link) beside it, renamed over."""
    for link in (path, path.parent):
        if link.is_symlink():
            raise EditError(f"{path}: {link} is a symbolic link; a domain file must be a "
                            "regular file in its folder: replace the link with the file "
                            "itself; nothing was changed")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as f:
            text = f.read().decode("utf-8")
            mode = os.fstat(f.fileno()).st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise EditError(f"{path}: cannot read it ({exc})") from None
    data = _load(text, str(path))
    domain = str(data.get("domain", "")) if isinstance(data, CommentedMap) else ""
    why = weakness(password, login, domain)
    if why:
        raise EditError(f"refused: the password is too weak: {why}; nothing was changed")
    set_password(text, str(path), login, "{SCHEME}x")  # refuse a bad file before hashing
    result = set_password(text, str(path), login, hash_password(password, scheme))
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".mailstate-tmp",
                                    dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "wb") as f:
            f.write(result.encode("utf-8"))
            os.fchmod(f.fileno(), mode & 0o7777)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise EditError(f"{path}: cannot write it ({exc.strerror})") from None
