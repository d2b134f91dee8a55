"""Dovecot passwd-file lines and the per-user fields mailstate puts in them.

A line is ``user:password:uid:gid:gecos:home:shell:extra fields``; Dovecot splits on ':' for the
first seven fields and on spaces for the extra fields, so no field may hold a ':' (except the
extra fields, which are re-joined) and no extra field may hold whitespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("k", 1024))
_SIZE = re.compile(r"(0|[1-9][0-9]*)([kMGT]?)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

QUOTA_23 = "userdb_quota_rule=*:storage="
QUOTA_24 = "userdb_quota_storage_size="
SIEVE_23 = "userdb_sieve=file:"
SIEVE_24 = "userdb_sieve_script/personal/path="
# Compiled binaries of a script outside the home go to the home, the only place the mail
# user may write to (the script itself lives in a root-owned directory).
SIEVE_23_BINDIR = ";bindir=~/.mailstate-sieve-bin"


def size(n: int, zero: str = "0") -> str:
    """Bytes as Dovecot's size syntax, in the largest 1024-power unit that divides exactly.

    A quota of 0 means no limit: 2.3's quota_rule spells it "0", 2.4 "unlimited".
    """
    if n < 0:
        raise ValueError(f"negative size: {n}")
    if n == 0:
        return zero
    for unit, factor in _UNITS:
        if n % factor == 0:
            return f"{n // factor}{unit}"
    raise ValueError(f"size {n} is not a multiple of 1 KiB")


def parse_size(text: str) -> int | None:
    """The inverse of ``size``; None when the text is not one."""
    if text == "unlimited":
        return 0
    m = _SIZE.fullmatch(text)
    if not m:
        return None
    factor = dict(_UNITS).get(m.group(2), 1)
    return int(m.group(1)) * factor


def field(value: str, what: str = "field") -> str:
    """A colon-separated passwd-file field: refuse what would split or break the line."""
    if ":" in value or _CONTROL.search(value) or "\u2028" in value or "\u2029" in value:
        raise ValueError(f"cannot be a passwd-file {what}: {value!r}")
    return value


def password(value: str) -> str:
    """A scheme-prefixed hash: hashes never hold ':' or whitespace, so neither may this."""
    if not value or re.search(r"[\s:]", value) or _CONTROL.search(value):
        raise ValueError("cannot be a passwd-file password hash (value not shown)")
    return value


def extra(value: str) -> str:
    """One space-separated extra field."""
    if not value or re.search(r"\s", value) or _CONTROL.search(value):
        raise ValueError(f"cannot be a passwd-file extra field: {value!r}")
    return value


@dataclass(frozen=True)
class PasswdEntry:
    """The fields of one passwd-file line, still as text."""

    user: str
    password: str
    uid: str
    gid: str
    gecos: str
    home: str
    shell: str
    extras: tuple[str, ...]


def split_passwd(line: str) -> PasswdEntry | None:
    """Split one line the way Dovecot does; None when it has too few fields."""
    parts = line.split(":")
    if len(parts) < 7:
        return None
    extras = ":".join(parts[7:]).split() if len(parts) > 7 else []
    return PasswdEntry(*parts[:7], extras=tuple(extras))
