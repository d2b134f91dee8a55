"""The contract with the server scripts: their exit codes and the stage's ``meta/`` file names.

Both come from one table, ``templates/server-contract.sh`` (package data): shell assignments
that the scripts using them have in front of them, and that this module reads. Python names
the members here; their values come only from the table (a unit test checks that the two
sides hold the same names and that the scripts use no bare number or file name).
"""

from __future__ import annotations

import re
from enum import IntEnum, StrEnum
from importlib.resources import files

TABLE = "server-contract.sh"
_ROW = re.compile(r"(?P<name>(?:EXIT|META)_[A-Z0-9_]+)=(?P<value>[A-Za-z0-9_.]+) +# \S.*")
_USES = re.compile(r"\$\{?(?:EXIT|META)_[A-Z]")


def read_table(text: str | None = None) -> dict[str, str]:
    """NAME -> value of every row; any other line than a row, a comment or a blank is an error."""
    if text is None:
        text = files("mailstate.templates").joinpath(TABLE).read_text(encoding="utf-8")
    rows: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        row = _ROW.fullmatch(line)
        if row is None or row["name"] in rows:
            raise ValueError(f"{TABLE} line {number}: not a new NAME=value  # meaning: {line!r}")
        rows[row["name"]] = row["value"]
    return rows


_ROWS = read_table()


def with_table(names: tuple[str, ...], texts: list[str]) -> tuple[str, ...]:
    """The template names to join: the table first when one of the scripts uses it."""
    return (TABLE, *names) if any(_USES.search(t) for t in texts) else names


class Exit(IntEnum):
    """Exit codes of server-activate.sh, server-push.sh and server-wait.sh (0: done)."""

    CHECK_FAILED = int(_ROWS["EXIT_CHECK_FAILED"])
    NO_GENERATION = int(_ROWS["EXIT_NO_GENERATION"])
    UNSAFE_PATH = int(_ROWS["EXIT_UNSAFE_PATH"])
    NOT_STORED = int(_ROWS["EXIT_NOT_STORED"])
    NOT_KEPT = int(_ROWS["EXIT_NOT_KEPT"])
    RESTORED = int(_ROWS["EXIT_RESTORED"])
    KILLED = int(_ROWS["EXIT_KILLED"])
    NOT_STARTED = int(_ROWS["EXIT_NOT_STARTED"])
    NOT_RESTORED = int(_ROWS["EXIT_NOT_RESTORED"])
    LOCKED = int(_ROWS["EXIT_LOCKED"])
    STALE = int(_ROWS["EXIT_STALE"])
    STOPPED = int(_ROWS["EXIT_STOPPED"])


class Meta(StrEnum):
    """Files under ``meta/`` in a stage: what server-activate.sh acts on."""

    MODE = _ROWS["META_MODE"]
    STATE_DIR = _ROWS["META_STATE_DIR"]
    LOCK_TIMEOUT = _ROWS["META_LOCK_TIMEOUT"]
    HOLDER = _ROWS["META_HOLDER"]
    DB_TYPE = _ROWS["META_DB_TYPE"]
    GENERATION = _ROWS["META_GENERATION"]
    ROLLBACK = _ROWS["META_ROLLBACK"]
    EXPECT = _ROWS["META_EXPECT"]
    EXPECT_POSTCONF = _ROWS["META_EXPECT_POSTCONF"]
    WRITE = _ROWS["META_WRITE"]
    REMOVE = _ROWS["META_REMOVE"]
    POSTMAP = _ROWS["META_POSTMAP"]
    SIEVE = _ROWS["META_SIEVE"]
    CHECK_DOVECOT = _ROWS["META_CHECK_DOVECOT"]
    DOVECOT_FRAGMENT = _ROWS["META_DOVECOT_FRAGMENT"]
    POSTGREY_DEFAULT = _ROWS["META_POSTGREY_DEFAULT"]
    POSTCONF = _ROWS["META_POSTCONF"]
    RELOAD = _ROWS["META_RELOAD"]
    CMD = _ROWS["META_CMD"]  # a prefix: cmd_SERVICE
    VMAIL = _ROWS["META_VMAIL"]
    LMTP_SOCKET = _ROWS["META_LMTP_SOCKET"]
    PRUNE = _ROWS["META_PRUNE"]
    PROBE = _ROWS["META_PROBE"]
    MANIFEST = _ROWS["META_MANIFEST"]
    STATE = _ROWS["META_STATE"]
