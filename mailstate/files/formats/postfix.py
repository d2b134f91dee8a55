"""Postfix lookup-table source lines (``postmap`` input): ``key value``.

Postfix tables have no quoting: a key is one token and an alias value is a list separated by
commas and whitespace. So the encoder refuses anything that would change how Postfix splits
the line instead of trying to escape it.
"""

from __future__ import annotations

import re

_DOMAIN = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+")
_TOKEN = re.compile(r"[^\s,#\"\\:]+")
_VALUE_WORD = re.compile(r"[^\s,\"\\]+")


def key(value: str) -> str:
    """A table key: one token without whitespace, comma, quote, backslash or comment sign."""
    if not _TOKEN.fullmatch(value) or value.startswith("#"):
        raise ValueError(f"cannot be a Postfix table key: {value!r}")
    return value


def domain(value: str) -> str:
    """A lower-case DNS name (A-labels), as a table key."""
    if not _DOMAIN.fullmatch(value) or len(value) > 253:
        raise ValueError(f"not a lower-case domain name: {value!r}")
    return value


def word(value: str) -> str:
    """One word of a table value (a target address, a path, ``OK``)."""
    if not _VALUE_WORD.fullmatch(value):
        raise ValueError(f"cannot be a Postfix table value: {value!r}")
    return value


def targets(values: tuple[str, ...] | list[str]) -> str:
    """An alias value: targets joined with ', ' as virtual(5) reads them."""
    if not values:
        raise ValueError("an alias needs at least one target")
    return ", ".join(word(v) for v in values)


def split_entry(text: str) -> tuple[str, str] | None:
    """``key rest`` of one logical line, or None when the line has no value."""
    parts = text.split(None, 1)
    if len(parts) != 2:
        return None
    return parts[0], parts[1].strip()


def split_targets(value: str) -> tuple[str, ...]:
    """The inverse of ``targets``: Postfix accepts commas and/or whitespace between targets."""
    return tuple(t for t in re.split(r"[,\s]+", value) if t)


def normal(text: str, *, alias: bool = False) -> tuple[str, ...]:
    """A comparable form of one entry, so that spacing differences are no drift."""
    entry = split_entry(text)
    if entry is None:
        return (text.strip(),)
    k, v = entry
    return (k, *split_targets(v)) if alias else (k, *v.split())
