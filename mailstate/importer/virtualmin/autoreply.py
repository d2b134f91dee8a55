"""A Virtualmin autoreply file -> a mailstate vacation, and what of it cannot be carried.

The file (written by Virtualmin, read by ``autoreply.pl``) starts with its own header lines
(``Reply-Period: SECONDS``, ``Autoreply-Start:``/``-End: EPOCH``, ``From:``, ...), then the
reply's text, which may itself begin with mail headers such as ``Subject:``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from mailstate.importer.virtualmin.files import number
from mailstate.model.values import check_address, check_message, check_subject

_OWN = ("Reply-Tracking", "Reply-Period", "No-Autoreply", "No-Autoreply-Regexp",
        "Autoreply-File", "Autoreply-Start", "Autoreply-End", "From", "Charset",
        "No-Forward-Reply")
_HEADER = re.compile(r"([A-Za-z][A-Za-z0-9-]*):\s*(.*)")
_NOT_CARRIED = ("No-Autoreply", "No-Autoreply-Regexp", "Autoreply-File", "No-Forward-Reply")
DEFAULT_SUBJECT = "Autoreply"


@dataclass
class Autoreply:
    vacation: dict[str, object] | None  # the domain file's `vacation:` mapping
    warnings: list[str] = field(default_factory=list)


def _date(epoch: str) -> dt.date | None:
    try:
        seconds = number(epoch)
        return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC).date()
    except (ValueError, OverflowError, OSError):
        return None


def convert(text: str, where: str) -> Autoreply:
    """`where` names the file in warnings."""
    own: dict[str, str] = {}
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines) and (m := _HEADER.fullmatch(lines[i])) and m[1] in _OWN:
        own.setdefault(m[1], m[2].strip())
        i += 1
    reply: dict[str, str] = {}
    j = i
    while j < len(lines) and (m := _HEADER.fullmatch(lines[j])):
        reply.setdefault(m[1].lower(), m[2].strip())
        j += 1
    if reply and j < len(lines) and lines[j] == "":
        body = "\n".join(lines[j + 1:])
    else:
        reply, body = {}, "\n".join(lines[i:])
    out = Autoreply(None)
    for key in _NOT_CARRIED:
        if own.get(key):
            out.warnings.append(f"{where}: {key}: {own[key]} is not carried (Sieve's vacation "
                                "has no such setting)")
    if re.search(r"\$\{?[A-Z]+\}?", body):
        out.warnings.append(f"{where}: the text uses autoreply.pl variables ($SUBJECT, $FROM "
                            "...), which Sieve sends as written")
    subject = reply.get("subject") or DEFAULT_SUBJECT
    if "subject" not in reply:
        out.warnings.append(f"{where}: no Subject: in the reply; it becomes {subject!r}")
    vacation: dict[str, object] = {}
    try:
        vacation["subject"] = check_subject(subject)
        vacation["message"] = check_message(body.strip("\n") + "\n")
    except ValueError as exc:
        out.warnings.append(f"{where}: the autoreply is not carried: {exc}")
        return out
    sender = own.get("From") or reply.get("from")
    if sender:
        address = sender.rpartition("<")[2].rstrip(">").strip()
        try:
            vacation["from"] = check_address(address)
        except ValueError:
            out.warnings.append(f"{where}: From: {sender} is not carried (not one address)")
    period = own.get("Reply-Period", "")
    seconds = number(period)
    if seconds is not None and seconds >= 1:
        vacation["interval"] = min(seconds, 30 * 86400)
        if seconds > 30 * 86400:
            out.warnings.append(f"{where}: Reply-Period {period}s is shortened to 30 days")
    else:
        if period:
            out.warnings.append(f"{where}: Reply-Period: {period} is not a number of seconds")
        out.warnings.append(f"{where}: no Reply-Period; mailstate's default interval (10m) "
                            "applies, so a sender gets one reply per 10 minutes")
    for key, name in (("Autoreply-Start", "start"), ("Autoreply-End", "end")):
        if own.get(key):
            day = _date(own[key])
            if day is None:
                out.warnings.append(f"{where}: {key}: {own[key]} is not a time; left out")
            else:
                vacation[name] = day
    if "start" in vacation and "end" in vacation and vacation["end"] < vacation["start"]:
        out.warnings.append(f"{where}: it ends before it starts; the end is left out")
        del vacation["end"]
    out.vacation = vacation
    return out
