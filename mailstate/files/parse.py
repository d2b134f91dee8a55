"""Live files -> state: the inverse of ``render``.

Reading is lenient and loud: everything mailstate can interpret becomes state, everything else
becomes a warning ``path:line: not understood: ...``. As a last step the parsed state is rendered
again and compared line by line (order-insensitive) with the live files, so that whatever the
state cannot express (a hand-edited line, an inconsistent pair of files) is reported too.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from mailstate.files import quota_warning
from mailstate.files.formats import dovecot, lines, postfix, postgrey, sieve
from mailstate.files.formats.lines import Line
from mailstate.files.paths import ALIAS_MAP, POSTFIX_MAPS, derived
from mailstate.files.render import LIVE_LOGIN, file_group, render
from mailstate.model.layout import MANAGED_HEADER, Facts, Layout, Rendered
from mailstate.model.passwords import mask_hashes
from mailstate.model.state import (
    Domain,
    Greylisting,
    Mailbox,
    QuotaWarnings,
    ServerState,
    Vacation,
)


def _valid(check: Callable[[str], str], *values: str | None) -> bool:
    """Whether render could write these values back (parse must never build what render
    refuses, or the re-render cross-check would fail instead of warning)."""
    try:
        for value in values:
            if value is not None:
                check(value)
    except ValueError:
        return False
    return True


@dataclass
class Parsed:
    state: ServerState
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Box:
    """A mailbox while its parts are collected from several files."""

    login: str
    domain: str
    name: str
    password: str
    quota: int
    primary_enabled: bool = True
    addresses: list[str] = field(default_factory=list)
    forward: tuple[str, ...] = ()
    keep_copy: bool = True
    vacation: Vacation | None = None


@dataclass
class _Dom:
    name: str
    domain_aliases: list[str] = field(default_factory=list)
    greylisting: bool = True
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    catch_all: tuple[str, ...] = ()


class _Reader:
    def __init__(self, files: dict[str, bytes], layout: Layout, facts: Facts) -> None:
        self.files, self.layout, self.facts = files, layout, facts
        self.passwd = f"{layout.dovecot_dir}/passwd"
        self.warnings: list[str] = []
        self.flagged: set[tuple[str, int]] = set()
        self.domains: dict[str, _Dom] = {}
        self.alias_of: dict[str, str] = {}  # alias domain -> domain
        self.boxes: dict[str, _Box] = {}  # by login
        self.owner: dict[str, str] = {}  # extra address -> login

    # -- reporting -------------------------------------------------------------------------
    def show(self, path: str, text: str) -> str:
        """A line as it may appear in a warning: never with a password hash in it, whatever
        the file and wherever on the line (a hand-edited passwd line may start with one).
        A passwd-file's second field is hidden whatever it holds (it may be plain text)."""
        if path == self.passwd and ":" in text:
            user, _, rest = text.partition(":")
            text = f"{user}:<hash>:" + rest.partition(":")[2]
        return mask_hashes(text)

    def warn(self, path: str, line: Line, why: str = "") -> None:
        self.flagged.add((path, line.number))
        suffix = f" ({why})" if why else ""
        self.warnings.append(
            f"{path}:{line.number}: not understood: {self.show(path, line.text)}{suffix}")

    def postfix(self, name: str) -> list[tuple[Line, str, str]]:
        """(line, key, value) of one map, duplicate keys and value-less lines reported."""
        path = f"{self.layout.postfix_dir}/{name}"
        out, seen = [], set()
        for line in lines.postfix_lines(self.files.get(path, b"")):
            entry = postfix.split_entry(line.text)
            if entry is None:
                self.warn(path, line, "no value")
            elif entry[0] in seen:
                self.warn(path, line, "duplicate key; Postfix uses the first")
            else:
                seen.add(entry[0])
                out.append((line, *entry))
        return out

    # -- reading ---------------------------------------------------------------------------
    def read_domains(self) -> None:
        path = f"{self.layout.postfix_dir}/virtual_mailbox_domains"
        for line, key, _value in self.postfix("virtual_mailbox_domains"):
            if not _valid(postfix.domain, key) or key in self.domains:
                self.warn(path, line)
            else:
                self.domains[key] = _Dom(key)
        path = f"{self.layout.postfix_dir}/virtual_alias_domains"
        for line, key, value in self.postfix("virtual_alias_domains"):
            if (value not in self.domains or key in self.domains or key in self.alias_of
                    or not _valid(postfix.domain, key)):
                self.warn(path, line, "not an alias of a hosted domain")
            else:
                self.alias_of[key] = value
                self.domains[value].domain_aliases.append(key)

    def read_passwd(self) -> None:
        prefix = f"{self.layout.vmail_dir}/"
        for line in lines.content_lines(self.files.get(self.passwd, b"")):
            e = dovecot.split_passwd(line.text)
            home = e.home[len(prefix):].split("/") if e and e.home.startswith(prefix) else []
            kept = self.layout.homes.get(e.user) if e else None
            if kept is not None and e is not None and e.home == kept.home:
                home = [kept.domain, e.user]  # a home kept where another tool made it
            if e is None or not LIVE_LOGIN.fullmatch(e.user) or e.user in self.boxes:
                self.warn(self.passwd, line)
                continue
            if len(home) != 2 or home[1] != e.user or not home[0]:
                self.warn(self.passwd, line, f"home is not {prefix}<domain>/{e.user}")
                continue
            quota = 0
            for x in e.extras:
                for known in (dovecot.QUOTA_23, dovecot.QUOTA_24):
                    if x.startswith(known):
                        quota = dovecot.parse_size(x[len(known):]) or 0
            if not (_valid(dovecot.password, e.password) and _valid(dovecot.field, e.gecos)
                    and _valid(postfix.domain, home[0]) and quota % 1024 == 0):
                self.warn(self.passwd, line, "a field mailstate cannot write back")
                continue
            self.boxes[e.user] = _Box(e.user, home[0], e.gecos, e.password, quota)
            self.domains.setdefault(home[0], _Dom(home[0]))

    def read_mailbox_addresses(self) -> None:
        path = f"{self.layout.postfix_dir}/virtual_mailboxes"
        for line, key, value in self.postfix("virtual_mailboxes"):
            parts = value.split("/")
            box = self.boxes.get(parts[1]) if len(parts) == 4 else None
            if box is None or value != f"{box.domain}/{box.login}/Maildir/":
                self.warn(path, line, "not the Maildir of a known mailbox")
            elif key != f"{box.login}@{box.domain}":
                if (not key.endswith("@" + box.domain) or key in self.owner
                        or not _valid(postfix.key, key)):
                    self.warn(path, line, f"not an address at {box.domain}")
                else:
                    self.owner[key] = box.login
                    box.addresses.append(key)

    def read_rejects(self) -> None:
        path = f"{self.layout.postfix_dir}/recipient_access"
        for line, key, _value in self.postfix("recipient_access"):
            local, _, dom = key.rpartition("@")
            box = self.boxes.get(local)
            if box and dom == box.domain:
                box.primary_enabled = False
            elif not (box and self.alias_of.get(dom) == box.domain):
                self.warn(path, line, "not the primary address of a mailbox")

    def read_aliases(self) -> None:
        path = f"{self.layout.postfix_dir}/{ALIAS_MAP}"
        for line, key, value in self.postfix(ALIAS_MAP):
            local, _, dom = key.rpartition("@")
            if dom in self.alias_of:
                continue  # per-address expansion of a domain alias; checked by re-rendering
            targets = postfix.split_targets(value)
            box = self.boxes.get(local)
            if not targets or not _valid(postfix.word, *targets) or not _valid(postfix.key, key):
                self.warn(path, line, "not a valid alias")
            elif dom not in self.domains:
                self.warn(path, line, "not at a hosted domain")
            elif not local:
                self.domains[dom].catch_all = targets
            elif box and box.domain == dom:
                box.keep_copy = key in targets
                rest = list(targets)
                if box.keep_copy:
                    rest.remove(key)
                box.forward = tuple(rest)
            elif key not in self.owner:
                self.domains[dom].aliases[key] = targets

    def read_sieve(self) -> None:
        prefix = self.layout.sieve_dir + "/"
        for path in sorted(p for p in self.files if p.startswith(prefix)):
            login = path[len(prefix):].removesuffix(".sieve")
            box = self.boxes.get(login)
            first = Line(1, "")
            if box is None or not path.endswith(".sieve") or "/" in login:
                self.warn(path, first, "no such mailbox")
                continue
            try:
                script = sieve.read(self.files[path].decode("utf-8"))
                vacation = _vacation(script)
                if not _valid(sieve.string, vacation.subject, vacation.message, vacation.sender):
                    raise ValueError("a text mailstate cannot write back")
                if not _valid(postfix.word, *script.redirects):
                    raise ValueError("a redirect target mailstate cannot write back")
                box.vacation = vacation
            except (ValueError, KeyError, TypeError) as exc:
                line = Line(getattr(exc, "line", 1), "")
                self.warn(path, line, f"not a mailstate vacation script: {exc}")
                continue
            if script.redirects and box.keep_copy and not box.forward:
                box.forward, box.keep_copy = tuple(script.redirects), False

    def read_greylisting(self) -> Greylisting:
        path = self.layout.postgrey_default
        opts: dict[str, int] = dict(postgrey.DEFAULTS)
        enabled = False
        for line in lines.content_lines(self.files.get(path, b"")):
            assignment = postgrey.parse_assignment(line.text)
            if assignment is None:
                self.warn(path, line)
            elif assignment[0] == "POSTGREY_OPTS":
                for word in assignment[1].split():
                    name, _, value = word.partition("=")
                    if name in opts and value.isdigit():
                        opts[name] = int(value)
            elif assignment[0] == postgrey.ENABLED_VAR:
                enabled = assignment[1] == "yes"
        path = f"{self.layout.postgrey_dir}/whitelist_recipients.local"
        recipients = []
        for line in lines.content_lines(self.files.get(path, b"")):
            if address := postgrey.parse_recipient_address(line.text.strip()):
                recipients.append(address)
                continue
            name = postgrey.parse_recipient_domain(line.text.strip())
            if name in self.domains:
                self.domains[name].greylisting = False
            elif name not in self.alias_of:
                self.warn(path, line, "not a hosted domain")
        path = f"{self.layout.postgrey_dir}/whitelist_clients.local"
        clients = []
        for line in lines.content_lines(self.files.get(path, b"")):
            if _valid(postgrey.client, line.text.strip()):
                clients.append(line.text.strip())
            else:
                self.warn(path, line, "not a client entry")
        return Greylisting(
            enabled=enabled, delay=opts["--delay"], max_age=opts["--max-age"],
            auto_whitelist_clients=opts["--auto-whitelist-clients"],
            whitelist_clients=tuple(sorted(set(clients))),
            whitelist_recipients=tuple(sorted(set(recipients))))

    def read_quota_warnings(self) -> QuotaWarnings:
        """The warning mail's text file; none on a server without it (no warnings)."""
        path = quota_warning.text_path(self.layout)
        data = self.files.get(path)
        if data is None:
            return QuotaWarnings(thresholds=())
        try:
            return quota_warning.read(data)
        except (ValueError, UnicodeDecodeError) as exc:
            self.warn(path, Line(1, ""), str(exc))
            return QuotaWarnings(thresholds=())

    def state(self) -> ServerState:
        self.read_domains()
        self.read_passwd()
        self.read_mailbox_addresses()
        self.read_rejects()
        self.read_aliases()
        self.read_sieve()
        greylisting = self.read_greylisting()
        warnings = self.read_quota_warnings()
        boxes: dict[str, dict[str, Mailbox]] = {name: {} for name in self.domains}
        for b in self.boxes.values():
            boxes[b.domain][b.login] = Mailbox(
                login=b.login, domain=b.domain, name=b.name, password=b.password, quota=b.quota,
                primary_enabled=b.primary_enabled, addresses=tuple(sorted(b.addresses)),
                forward=b.forward, keep_copy=b.keep_copy, vacation=b.vacation)
        domains = {
            d.name: Domain(
                name=d.name, domain_aliases=tuple(sorted(d.domain_aliases)),
                greylisting=d.greylisting, mailboxes=boxes[d.name], aliases=d.aliases,
                catch_all=d.catch_all)
            for d in self.domains.values()
        }
        return ServerState(domains=domains, greylisting=greylisting, quota_warnings=warnings)

    # -- cross-check -----------------------------------------------------------------------
    def compare(self, expected: Rendered, skip: set[str] | frozenset[str] = frozenset()) -> None:
        """Report live lines that the parsed state would not render, and lines it lacks.

        Paths in `skip` are known to be exactly what mailstate renders: nothing to report.
        """
        want = expected.by_path()
        for path in sorted(set(self.files) - skip):
            data = self.files[path]
            first = lines.split_lines(data)[:1]
            if not first or MANAGED_HEADER not in first[0]:
                self.warn(path, Line(1, first[0] if first else ""), "no mailstate header")
            if path not in want or data == want[path].content:
                continue  # byte-identical to what the parsed state renders: nothing to report
            if path == self.layout.dovecot_fragment or path.endswith((".sieve", ".txt", ".sh")):
                self._compare_exact(path, data, want[path].content)
            else:
                self._compare_lines(path, data, want[path].content)
        flagged = {p for p, _ in self.flagged}
        for path in sorted(set(self.files) - set(want) - skip):
            if path not in flagged:
                self.warn(path, Line(1, ""), "not a file mailstate renders for this state")

    def _normal(self, path: str, text: str) -> tuple[str, ...]:
        name = path.rsplit("/", 1)[-1]
        if path.startswith(self.layout.postfix_dir + "/") and name in POSTFIX_MAPS:
            return postfix.normal(text, alias=name == ALIAS_MAP)
        if path == self.passwd and (e := dovecot.split_passwd(text)):
            return (e.user, e.password, e.uid, e.gid, e.gecos, e.home, e.shell, *e.extras)
        return tuple(text.split())

    def _logical(self, path: str, data: bytes) -> list[Line]:
        if path.startswith(self.layout.postfix_dir + "/"):
            return lines.postfix_lines(data)
        return lines.content_lines(data)

    def _compare_lines(self, path: str, live: bytes, want: bytes) -> None:
        expected = Counter(self._normal(path, x.text) for x in self._logical(path, want))
        for line in self._logical(path, live):
            key = self._normal(path, line.text)
            if expected[key] > 0:
                expected[key] -= 1
            elif (path, line.number) not in self.flagged:
                self.warn(path, line, "differs from what mailstate renders")
        for line in self._logical(path, want):
            key = self._normal(path, line.text)
            if expected[key] > 0:
                expected[key] -= 1
                self.warnings.append(f"{path}: missing: {self.show(path, line.text)}")

    def _compare_exact(self, path: str, live: bytes, want: bytes) -> None:
        have, need = lines.split_lines(live), lines.split_lines(want)
        if (path, 1) in self.flagged or have == need:
            return
        for n, (a, b) in enumerate(zip(have, need, strict=False), start=1):
            if a != b:
                self.warn(path, Line(n, a), "differs from what mailstate renders")
                return
        n = min(len(have), len(need)) + 1
        if len(have) > len(need):
            self.warn(path, Line(n, have[n - 1]), "differs from what mailstate renders")
        else:
            self.warnings.append(f"{path}: missing: {need[n - 1]}")


def _vacation(script: sieve.Script) -> Vacation:
    """A Vacation from a script's extracted arguments (KeyError/ValueError when incomplete)."""
    if script.vacation is None:
        raise ValueError("no vacation action")
    args = script.vacation
    start, end = script.dates.get("ge"), script.dates.get("le")
    try:
        return Vacation(
            subject=args[":subject"], message=args["body"], sender=args.get(":from"),
            interval=int(str(args[":seconds"])),
            start=dt.date.fromisoformat(start) if start else None,
            end=dt.date.fromisoformat(end) if end else None)
    except ValidationError as exc:
        raise ValueError(str(exc).splitlines()[0]) from exc


def parse(files: dict[str, bytes], layout: Layout, facts: Facts,
          known: dict[str, bytes] | None = None) -> Parsed:
    """Parse the live files of one server; missing files are empty parts of the state.

    ``files`` maps absolute paths to contents; files the server derives from managed ones
    (``postmap`` output, compiled Sieve binaries) may be included and are ignored. ``known``
    (optional) holds files mailstate rendered itself: a live file equal to its known version
    is understood line by line already, so the cross-check renders only the other groups.
    """
    program = f"{layout.state_dir}/read-only"  # mailstate's own program, not state
    files = {p: c for p, c in files.items() if not derived(p, layout) and p != program}
    reader = _Reader(files, layout, facts)
    state = reader.state()
    known = known or {}
    skip = {p for p, c in files.items() if known.get(p) == c}
    groups = {file_group(p, layout) for p in set(files) - skip}
    try:
        expected = render(state, layout, facts, groups)
    except ValueError as exc:  # a combination the readers did not foresee: say so, don't crash
        reader.warnings.append(f"live files describe a state mailstate cannot render: {exc}")
    else:
        reader.compare(expected, skip)
    return Parsed(state=state, warnings=reader.warnings)
