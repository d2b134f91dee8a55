"""The one read: everything mailstate owns on a server, its versions and settings, in one
round trip (``templates/server-read.sh``), parsed into a ``Snapshot``."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field

from mailstate.files.paths import read_paths
from mailstate.files.programs import script
from mailstate.model.layout import Facts, Layout
from mailstate.server.transport import Transport, TransportError


@dataclass
class Snapshot:
    """The live state of a server as read in one round trip."""

    files: dict[str, bytes]  # absolute path -> content
    facts: Facts
    postconf: dict[str, str]  # `postconf -n`
    generations: list[str] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)  # "domain/login" -> bytes (quota)
    journal: str = ""  # "apply started", "apply committed", "rollback started": unfinished
    lock_holder: str = ""  # who took the lock last (left behind when that run was killed)
    postgrey: str = ""  # how the running postgrey differs from /etc/default/postgrey
    # The managed files hold exactly what the read was told to expect, so only the manifest
    # was sent (``files`` then holds nothing else).
    matched: bool = False


def _postconf(text: str) -> dict[str, str]:
    settings: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:  # main.cf continuation line
            settings[key] += " " + line.strip()
            continue
        if not line.strip() or line.lstrip().startswith("#") or "=" not in line:
            key = None
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        settings[key] = value.strip()
    return settings


def _members(data: bytes) -> dict[str, bytes]:
    """The regular files of a tar archive by name (an empty archive gives nothing)."""
    if not data:
        return {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers() if m.isfile()}


def read_snapshot(transport: Transport, layout: Layout, default_facts: Facts,
                  expect: dict[str, str] | None = None) -> Snapshot:
    """One round trip: managed files, versions, map type, main.cf settings. With `expect`
    (path -> sha256 of every managed file), files that hold exactly that are not sent."""
    stdin = "".join(p + "\n" for p in read_paths(layout)).encode()
    if expect:
        stdin += b"--expect\n" + "".join(f"{h}  {p}\n" for p, h in expect.items()).encode()
    result = transport.run(script("server-read.sh"), [layout.state_dir, layout.vmail_dir,
                                                      layout.postgrey_default], stdin)
    if result.returncode != 0:
        raise TransportError(f"{transport.name}: reading the live state failed: {result.message}")
    try:
        outer = _members(result.stdout)
        facts_raw = {name[6:]: data.decode("utf-8", "replace").strip()
                     for name, data in outer.items() if name.startswith("facts/")}
        found = {"/" + name: data for name, data in _members(outer.get("files.tar", b"")).items()}
    except (tarfile.TarError, AttributeError) as exc:
        raise TransportError(f"{transport.name}: unreadable answer from the server: {exc}") \
            from None
    facts = default_facts
    version = facts_raw.get("dovecot_version", "").split(" ")[0]
    if version and version[0].isdigit():
        facts = facts.model_copy(update={"dovecot_version": version})
    if facts_raw.get("postfix_version"):
        facts = facts.model_copy(update={"postfix_version": facts_raw["postfix_version"]})
    if facts_raw.get("db_type"):
        facts = facts.model_copy(update={"db_type": facts_raw["db_type"]})
    for name in ("ssl", "myhostname"):  # for the new-domain notice
        if facts_raw.get(name):
            facts = facts.model_copy(update={name: " ".join(facts_raw[name].split())})
    protocols = parse_protocols(facts_raw.get("protocols", ""))
    if protocols:
        facts = facts.model_copy(update={"protocols": protocols})
    return Snapshot(found, facts, _postconf(facts_raw.get("postconf", "")),
                    sorted(facts_raw.get("generations", "").split()),
                    _usage(facts_raw.get("usage", "")), facts_raw.get("journal", ""),
                    facts_raw.get("lock_holder", ""), facts_raw.get("postgrey", ""),
                    "matched" in facts_raw)


def parse_protocols(text: str) -> tuple[str, ...]:
    """`doveconf -h protocols`: Dovecot 2.3 prints "imap lmtp pop3", 2.4 one "imap = yes" line
    per protocol (and "no" for one switched off)."""
    found: list[str] = []
    for line in text.splitlines():
        name, eq, value = line.partition("=")
        if eq:
            if value.strip() == "yes" and name.strip():
                found.append(name.strip())
        else:
            found += line.split()
    return tuple(sorted(set(found)))


def _usage(text: str) -> dict[str, int]:
    """"BYTES<TAB>domain/login/Maildir/maildirsize" lines -> bytes by "domain/login"."""
    usage = {}
    for line in text.splitlines():
        size, _, path = line.partition("\t")
        home = path.removesuffix("/Maildir/maildirsize")
        if size.lstrip("-").isdigit() and home.count("/") == 1:
            usage[home] = max(int(size), 0)
    return usage
