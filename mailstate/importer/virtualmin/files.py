"""What Virtualmin leaves on a server, read in one round trip and split into records.

Formats, as Virtualmin (virtualmin-gpl) writes them on a Postfix server:

- ``/etc/webmin/virtual-server/domains/<id>`` and ``plans/<id>``: ``key=value`` lines.
- ``/etc/postfix/virtual``: ``address destination`` lines; ``dom dom`` marks a mail domain,
  ``@dom`` is a catch-all, a destination without ``@`` is a Unix user (``\\@`` escaped in
  user@domain style names) or an entry of ``/etc/aliases``.
- ``/etc/aliases``: ``name: value, value``; ``\\user`` delivers into that user's mailbox,
  ``|/etc/webmin/virtual-server/autoreply.pl FILE who`` is an autoreply.
- mailboxes are Unix users (``/etc/passwd``, hashes in ``/etc/shadow``), quotas are Linux disk
  quotas (``repquota -n``: 1 KiB blocks by uid).

Nothing here decides what mailstate makes of them; ``virtualmin.py`` does.
"""

from __future__ import annotations

import io
import re
import tarfile
from dataclasses import dataclass, field

from mailstate.files.programs import script
from mailstate.server.read import _members, _postconf
from mailstate.server.transport import Transport, TransportError

DOMAINS_DIR = "/etc/webmin/virtual-server/domains/"
PLANS_DIR = "/etc/webmin/virtual-server/plans/"
AUTOREPLY = re.compile(r"^\|\s*/etc/webmin/virtual-server/autoreply\.pl\s+(\S+)")


@dataclass(frozen=True)
class UnixUser:
    name: str
    uid: int
    gid: int
    gecos: str
    home: str


@dataclass
class VirtualminFiles:
    """The raw records of one Virtualmin server."""

    domains: dict[str, dict[str, str]]  # id -> record
    plans: dict[str, dict[str, str]]  # id -> record
    virtual: list[tuple[int, str, list[str]]]  # (line, address, destinations)
    aliases: dict[str, list[str]]  # /etc/aliases name -> values
    users: dict[str, UnixUser]  # by name
    shadow: dict[str, str]  # name -> hash field
    files: dict[str, bytes]  # every file read, by absolute path
    postconf: dict[str, str] = field(default_factory=dict)
    quotas: dict[int, int] = field(default_factory=dict)  # uid -> bytes (hard, else soft)
    maildirs: set[str] = field(default_factory=set)  # homes holding a Maildir

    def text(self, path: str) -> str:
        return self.files.get(path, b"").decode("utf-8", "replace")


def number(value: str) -> int | None:
    """A whole number written in ASCII digits, else None (``str.isdigit`` also takes '²',
    which ``int`` refuses)."""
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() else None


def unescape(name: str) -> str:
    """An /etc/aliases name as Postfix's postalias keys it: ``jean\\@autre.be`` and
    ``"jean@autre.be"`` are both ``jean@autre.be``; lower-cased."""
    return re.sub(r"\\(.)", r"\1", name.strip().strip('"')).lower()


def key_values(text: str) -> dict[str, str]:
    """Virtualmin's ``key=value`` records (the first '=' splits; later ones are data)."""
    out = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Postfix/aliases lines: '#' comments dropped, indented lines continue the previous."""
    out: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
        else:
            out.append((number, line.strip()))
    return out


def split_values(text: str) -> list[str]:
    """'a, "|prog arg", b' -> values; double quotes keep commas and spaces together."""
    values, current, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            values.append(current.strip())
            current = ""
        else:
            current += ch
    values.append(current.strip())
    return [v for v in values if v]


def parse_virtual(text: str) -> list[tuple[int, str, list[str]]]:
    out = []
    for number, line in _logical_lines(text):
        key, _, rest = line.partition(" ") if " " in line else line.partition("\t")
        values = [v for part in split_values(rest) for v in part.split()]
        out.append((number, key.strip().lower(), values))
    return out


def parse_aliases(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for _number, line in _logical_lines(text):
        name, sep, rest = line.partition(":")
        if sep:
            out.setdefault(unescape(name), split_values(rest))
    return out


def parse_passwd(text: str) -> dict[str, UnixUser]:
    users = {}
    for line in text.splitlines():
        parts = line.split(":")
        uid, gid = (number(parts[2]), number(parts[3])) if len(parts) >= 7 else (None, None)
        if uid is not None and gid is not None:
            users[parts[0]] = UnixUser(parts[0], uid, gid, parts[4], parts[5])
    return users


def parse_shadow(text: str) -> dict[str, str]:
    return {p[0]: p[1] for line in text.splitlines() if len(p := line.split(":")) >= 2}


def parse_repquota(text: str, block: int = 1024) -> dict[int, int]:
    """``repquota -n`` lines '#UID -- used soft hard ...' -> uid -> limit in bytes."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0].startswith("#"):
            uid, soft, hard = number(parts[0][1:]), number(parts[3]), number(parts[4])
            if uid is None or soft is None or hard is None:
                continue
            limit = hard or soft
            if limit:
                out[uid] = limit * block
    return out


def from_files(files: dict[str, bytes], facts: dict[str, str]) -> VirtualminFiles:
    """Split what was read into records (no judgement yet)."""
    def text(path: str) -> str:
        return files.get(path, b"").decode("utf-8", "replace")

    return VirtualminFiles(
        domains={p[len(DOMAINS_DIR):]: key_values(text(p)) for p in sorted(files)
                 if p.startswith(DOMAINS_DIR)},
        plans={p[len(PLANS_DIR):]: key_values(text(p)) for p in sorted(files)
               if p.startswith(PLANS_DIR)},
        virtual=parse_virtual(text("/etc/postfix/virtual")),
        aliases=parse_aliases(text("/etc/aliases")),
        users=parse_passwd(text("/etc/passwd")),
        shadow=parse_shadow(text("/etc/shadow")),
        files=files,
        postconf=_postconf(facts.get("postconf") or text("/etc/postfix/main.cf")),
        quotas=parse_repquota(facts.get("repquota", "")),
        maildirs=set(facts.get("maildirs", "").split()),
    )


def read(transport: Transport) -> VirtualminFiles:
    """One round trip: every file above, and the facts."""
    result = transport.run(script("virtualmin-read.sh"), [])
    if result.returncode != 0:
        raise TransportError(f"{transport.name}: reading Virtualmin's files failed: "
                             f"{result.message}")
    try:
        outer = _members(result.stdout)
        files = {"/" + n: d for n, d in _members(outer.get("files.tar", b"")).items()}
    except (tarfile.TarError, AttributeError, io.UnsupportedOperation) as exc:
        raise TransportError(f"{transport.name}: unreadable answer from the server: {exc}") \
            from None
    facts = {n[6:]: d.decode("utf-8", "replace") for n, d in outer.items()
             if n.startswith("facts/")}
    return from_files(files, facts)
