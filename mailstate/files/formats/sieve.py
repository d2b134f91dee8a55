"""Sieve (RFC 5228) quoted strings and a small tokenizer to read mailstate's scripts back.

Only the two escapes RFC 5228 defines are produced (``\\\\`` and ``\\"``); a quoted string may
span lines, so a vacation message needs no dot-stuffing. The reader is deliberately not a full
Sieve parser: it extracts the few arguments mailstate writes, and ``parse`` then re-renders
the script and compares, so that any other difference is reported, never ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"""(?P<ws>[ \t\r\n]+)
      | (?P<comment>\#[^\n]*|/\*.*?\*/)
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<tag>:[A-Za-z_][A-Za-z0-9_]*)
      | (?P<number>[0-9]+[KMG]?)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[\[\](),;{}])""",
    re.X | re.S,
)


def string(value: str) -> str:
    """A Sieve quoted string. NUL and CR cannot be carried (LF-normalised text only)."""
    if "\x00" in value or "\r" in value:
        raise ValueError(f"cannot be a Sieve string: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def string_list(values: tuple[str, ...] | list[str]) -> str:
    """A Sieve string list ``["a", "b"]``."""
    return "[" + ", ".join(string(v) for v in values) + "]"


def unquote(token: str) -> str:
    """The inverse of ``string``; any other backslash escape stands for the character itself."""
    return re.sub(r"\\(.)", r"\1", token[1:-1], flags=re.S)


@dataclass(frozen=True)
class Token:
    kind: str
    value: str
    line: int


class SieveSyntaxError(ValueError):
    """The script has text the tokenizer cannot read; ``line`` says where."""

    def __init__(self, line: int, text: str) -> None:
        super().__init__(f"line {line}: {text}")
        self.line = line


def tokens(text: str) -> list[Token]:
    """Tokens without whitespace and comments, each with its 1-based line."""
    out: list[Token] = []
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SieveSyntaxError(line, text[pos : pos + 20])
        kind = m.lastgroup or ""
        if kind not in ("ws", "comment"):
            out.append(Token(kind, m.group(), line))
        line += m.group().count("\n")
        pos = m.end()
    return out


@dataclass
class Script:
    """What mailstate's script for one mailbox says, as far as the state is concerned."""

    vacation: dict[str, str | list[str]] | None = None  # tag -> value, "body" -> body
    dates: dict[str, str] = field(default_factory=dict)  # "ge"/"le" -> YYYY-MM-DD
    redirects: list[str] = field(default_factory=list)


def read(text: str) -> Script:
    """Extract vacation arguments, date bounds and redirect targets from a script."""
    toks = tokens(text)
    script = Script()
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.kind == "ident" and t.value == "vacation":
            script.vacation, i = _vacation_args(toks, i + 1)
            continue
        if t.kind == "ident" and t.value == "redirect" and _kinds(toks, i + 1, "string", "punct"):
            script.redirects.append(unquote(toks[i + 1].value))
            i += 2
            continue
        if t.kind == "ident" and t.value == "currentdate" and _is_date_test(toks, i + 1):
            script.dates[unquote(toks[i + 2].value)] = unquote(toks[i + 4].value)
            i += 5
            continue
        i += 1
    return script


def _kinds(toks: list[Token], i: int, *kinds: str) -> bool:
    return all(i + k < len(toks) and toks[i + k].kind == kind for k, kind in enumerate(kinds))


def _is_date_test(toks: list[Token], i: int) -> bool:
    return (
        _kinds(toks, i, "tag", "string", "string", "string")
        and toks[i].value == ":value"
        and unquote(toks[i + 2].value) == "date"
    )


def _vacation_args(toks: list[Token], i: int) -> tuple[dict[str, str | list[str]], int]:
    """Tagged arguments then the body string, up to the closing ';'."""
    args: dict[str, str | list[str]] = {}
    while i < len(toks) and toks[i].value != ";":
        t = toks[i]
        if t.kind == "tag" and i + 1 < len(toks):
            value, i = _value(toks, i + 1)
            args[t.value] = value
        elif t.kind == "string":
            args["body"] = unquote(t.value)
            i += 1
        else:
            raise SieveSyntaxError(t.line, f"unexpected {t.value!r} in vacation")
    return args, i + 1


def _value(toks: list[Token], i: int) -> tuple[str | list[str], int]:
    t = toks[i]
    if t.kind in ("string", "number"):
        return (unquote(t.value) if t.kind == "string" else t.value), i + 1
    if t.value == "[":
        items: list[str] = []
        i += 1
        while i < len(toks) and toks[i].value != "]":
            if toks[i].kind == "string":
                items.append(unquote(toks[i].value))
            elif toks[i].value != ",":
                raise SieveSyntaxError(toks[i].line, f"unexpected {toks[i].value!r} in list")
            i += 1
        return items, i + 1
    raise SieveSyntaxError(t.line, f"unexpected {t.value!r}")
