"""Line handling shared by the line-oriented formats (Postfix maps, passwd-file, postgrey)."""

from __future__ import annotations

from dataclasses import dataclass

from mailstate.model.layout import MANAGED_HEADER


def header(what: str) -> str:
    """The first line of every managed file: a comment naming mailstate and the file's role."""
    return f"# {MANAGED_HEADER}: {what}; edits here are overwritten by the next apply"


@dataclass(frozen=True)
class Line:
    """One logical line of a live file, with its 1-based number for warnings."""

    number: int
    text: str


def split_lines(data: bytes) -> list[str]:
    """Decode and split on LF only: str.splitlines() would also split on U+2028, NEL, FF…"""
    text = data.decode("utf-8", errors="surrogateescape")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def content_lines(data: bytes) -> list[Line]:
    """Non-blank, non-comment lines (comments start with '#' in every line format we write)."""
    out = []
    for n, raw in enumerate(split_lines(data), start=1):
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            out.append(Line(n, raw))
    return out


def postfix_lines(data: bytes) -> list[Line]:
    """Postfix table source lines: a line starting with whitespace continues the previous one."""
    if b"\n " not in data and b"\n\t" not in data and data[:1] not in (b" ", b"\t"):
        # No continuation lines (always so for what mailstate writes): one cheap pass.
        return [Line(n, raw.strip()) for n, raw in enumerate(split_lines(data), start=1)
                if raw.strip() and not raw.lstrip().startswith("#")]
    out: list[Line] = []
    for n, raw in enumerate(split_lines(data), start=1):
        stripped = raw.strip()
        if not stripped or raw.lstrip().startswith("#"):
            continue
        if raw[0] in " \t" and out:
            prev = out[-1]
            out[-1] = Line(prev.number, f"{prev.text} {stripped}")
        else:
            out.append(Line(n, raw.strip()))
    return out
