"""What every target does: run a fixed script with data on stdin, in one round trip.

A target (``local:DIR`` or ``ssh://user@host``) only knows how to run ``sh`` with a script
and bytes on standard input and to return what came back. The scripts themselves
(``templates/server-*.sh``) are the same for both, so the local target that unit tests use
runs the very code a real server runs, minus the server programs.
"""

from __future__ import annotations

import io
import os
import shlex
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Protocol

from ..layout import Facts, Layout
from ..server_contract import with_table


class TransportError(Exception):
    """The target could not be reached or a script failed; the message says which and why."""


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def message(self) -> str:
        return (self.stderr or self.stdout).decode("utf-8", "replace").strip()


class Transport(Protocol):
    name: str
    round_trips: int

    def run(self, script: str, args: list[str], stdin: bytes = b"",
            on_line: Callable[[str], None] | None = None,
            idle_timeout: float | None = None) -> Result:
        """Run `sh -c script sh args...` on the target with stdin; one round trip.
        `on_line` is called with each line of standard output as it arrives."""
        ...

    def reconnect(self) -> None:
        """Open a new connection after the old one was lost."""
        ...

    def close(self) -> None: ...


class LineFeed:
    """Calls `on_line` with each complete line of a growing output, once."""

    def __init__(self, on_line: Callable[[str], None] | None) -> None:
        self.on_line = on_line
        self.done = 0

    def feed(self, data: bytes | bytearray) -> None:
        if self.on_line is None:
            return
        end = data.rfind(b"\n")
        if end < self.done:
            return
        for line in bytes(data[self.done:end]).split(b"\n"):
            self.on_line(line.decode("utf-8", "replace"))
        self.done = end + 1


def script(*names: str) -> str:
    """Server scripts (run one after the other) with ``server-lib.sh`` in front of them, then
    the table of exit codes and meta/ names when they use it (server_contract)."""
    base = files("mailstate.templates")
    names = with_table(names, [base.joinpath(n).read_text() for n in names])
    return "".join(base.joinpath(n).read_text() for n in ("server-lib.sh", *names))


FAULT_ENV = "MAILSTATE_FAULT"  # test-only fault hook of the server scripts (server-lib.sh)
TIMES_ENV = "MAILSTATE_TIMES"  # the benchmark's: each step's time on the scripts' stderr


def sh_command(script_text: str, args: list[str]) -> str:
    """A fixed script plus validated arguments as one shell command line. The test-only fault
    hook and the benchmark's timing switch, when set in this process, are passed on to the
    server like on the local target."""
    env = [f"{name}={shlex.quote(os.environ[name])}" for name in (FAULT_ENV, TIMES_ENV)
           if os.environ.get(name)]
    return " ".join([*(["env", *env] if env else []), "sh", "-c", shlex.quote(script_text),
                     "mailstate", *(shlex.quote(a) for a in args)])


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


def read_paths(layout: Layout) -> list[str]:
    """Everything mailstate owns on a server (directories are read whole), then one
    "=domain/login HOME" line per kept home, whose quota usage the read reports too. The
    read script adds every file of the last apply's manifest, wherever an older layout put it."""
    from ..parse import managed_paths

    paths = managed_paths(layout)
    kept = [f"={k.domain}/{login} {k.home}" for login, k in sorted(layout.homes.items())]
    return [*paths.files, *paths.directories, f"{layout.state_dir}/manifest.json",
            f"{layout.state_dir}/state.json", *kept]


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
