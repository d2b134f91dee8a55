"""YAML text for the files an import writes: block style, as a person writes it, and fast.

An adopted server gives tens of thousands of values; ruamel.yaml's emitter took about 20 s for
100 domains x 100 mailboxes, this takes well under one. It knows only what the import
writes (mappings with text keys, lists, text, booleans, integers, dates, None). Text is plain
where YAML reads it back as the same text, a literal block for a multi-line message, and
double-quoted (JSON escapes, which YAML shares) otherwise. The unit tests read every written
file back and compare.
"""

from __future__ import annotations

import datetime as dt
import json
import re

_PLAIN = re.compile(r"[A-Za-z0-9/](?:[A-Za-z0-9 ._@+/-]*[A-Za-z0-9._@+/-])?")
_NOT_TEXT = re.compile(r"[-+]?(\d[\d_]*(\.\d*)?([eE][-+]?\d+)?|\.\d+|0x[0-9a-fA-F_]+|"
                       r"0o[0-7_]+|0b[01_]+|\.(inf|nan))|\d{4}-\d\d?-\d\d?.*|[0-9:]+",
                       re.IGNORECASE)
# Characters JSON writes as they are but YAML refuses (or folds into a space): escaped.
_UNPRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}


class Flow(dict):
    """A small mapping of scalars written on one line: `{domain: x, uid: 1}`."""


def scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        raise TypeError(f"cannot write {type(value).__name__} as YAML")
    if _PLAIN.fullmatch(value) and not _NOT_TEXT.fullmatch(value) \
            and value.lower() not in _WORDS:
        return value
    quoted = json.dumps(value, ensure_ascii=False)
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m[0]):04x}", quoted)


def _literal(value: str, indent: str) -> str | None:
    """A `|` block when it reads back exactly: one final newline, no leading space or CR."""
    if ("\n" not in value.rstrip("\n") or not value.endswith("\n") or value.endswith("\n\n")
            or value[:1] in (" ", "\t") or "\r" in value
            or any(not ch.isprintable() and ch not in "\n\t" for ch in value)):
        return None
    lines = value[:-1].split("\n")
    return "|\n" + "".join(f"{indent}{line}\n" if line else "\n" for line in lines)


def _block(value: object, indent: str, out: list[str]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            out.append(f"{indent}{scalar(key)}:")
            _value(item, indent, out)
    elif isinstance(value, list) and value:
        for item in value:
            if isinstance(item, (dict, list)) and item:
                out.append(f"{indent}-\n")
                _block(item, indent + "  ", out)
            else:
                out.append(f"{indent}- {scalar(item)}\n")


def _value(item: object, indent: str, out: list[str]) -> None:
    """What follows 'key:' on its line, and below it."""
    if isinstance(item, Flow):
        out.append(" {" + ", ".join(f"{scalar(k)}: {scalar(v)}" for k, v in item.items())
                   + "}\n")
    elif isinstance(item, dict) and item:
        out.append("\n")
        _block(item, indent + "  ", out)
    elif isinstance(item, list) and item:
        out.append("\n")
        _block(item, indent, out)
    elif isinstance(item, (dict, list)):
        out.append(" {}\n" if isinstance(item, dict) else " []\n")
    elif isinstance(item, str) and (text := _literal(item, indent + "  ")):
        out.append(" " + text)
    else:
        out.append(f" {scalar(item)}\n")


def dump(data: dict[str, object]) -> str:
    out: list[str] = []
    _block(data, "", out)
    return "".join(out)
