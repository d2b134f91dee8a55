"""postgrey's option file (sourced by the init script / systemd EnvironmentFile) and lists.

``/etc/default/postgrey`` is shell: values go in double quotes, so only characters with no
meaning inside shell double quotes are accepted. Whole-domain recipient entries use postgrey's
``/regex/`` form anchored on ``@domain``, because the bare ``domain`` form also matches every
subdomain, which could whitelist a hosted subdomain that keeps greylisting.
"""

from __future__ import annotations

import re

# postgrey's own defaults, used when an option is absent from a live file
DEFAULTS = {"--delay": 300, "--max-age": 35, "--auto-whitelist-clients": 5}
ENABLED_VAR = "MAILSTATE_GREYLISTING"

_SHELL_SAFE = re.compile(r"[A-Za-z0-9@%+=:,./_\-\[\]]+")
_DOMAIN = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_CLIENT = re.compile(r"[^\s#/]+(/[0-9]{1,3})?")
_RECIPIENT_RE = re.compile(r"/@((?:[a-z0-9-]+\\\.)*[a-z0-9-]+)\$/")


def shell_word(value: str) -> str:
    """A word inside a shell double-quoted string: refuse $, `, \\, " and whitespace."""
    if not _SHELL_SAFE.fullmatch(value):
        raise ValueError(f"cannot be put in a shell variable: {value!r}")
    return value


def client(value: str) -> str:
    """A whitelist_clients entry: one host name, IP address or network."""
    if not _CLIENT.fullmatch(value):
        raise ValueError(f"cannot be a postgrey client entry: {value!r}")
    return value


def recipient_domain(domain: str) -> str:
    """A whitelist_recipients entry matching exactly the addresses at ``domain``."""
    if not _DOMAIN.fullmatch(domain):
        raise ValueError(f"cannot be a postgrey recipient domain: {domain!r}")
    return "/@" + domain.replace(".", "\\.") + "$/"


_ADDRESS = re.compile(r"[a-z0-9._+-]+@" + _DOMAIN.pattern)


def recipient_address(address: str) -> str:
    """A whitelist_recipients entry for exactly one address (postgrey: ``user@domain``)."""
    if not _ADDRESS.fullmatch(address):
        raise ValueError(f"cannot be a postgrey recipient address: {address!r}")
    return address


def parse_recipient_address(entry: str) -> str | None:
    return entry if _ADDRESS.fullmatch(entry) else None


def parse_recipient_domain(entry: str) -> str | None:
    """The inverse of ``recipient_domain``; None for any other kind of entry."""
    m = _RECIPIENT_RE.fullmatch(entry)
    return m.group(1).replace("\\.", ".") if m else None


def parse_assignment(line: str) -> tuple[str, str] | None:
    """``NAME="value"`` (or unquoted value without spaces) -> (NAME, value)."""
    m = re.fullmatch(r'([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"$`\\]*)"|([^\s"\'$`\\]*))', line.strip())
    if not m:
        return None
    return m.group(1), m.group(2) if m.group(2) is not None else m.group(3)
