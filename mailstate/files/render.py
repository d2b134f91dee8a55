"""Desired state -> the exact bytes of every file mailstate owns on a server.

Everything is sorted so that one state always gives the same bytes (a stable fingerprint and
no spurious drift). Data is encoded by each format's own rules in ``mailstate.files.formats``. Files
of one line per mailbox or address are built as plain strings (a large server has hundreds of
thousands of lines: a template engine's loop costs more than the data); the few fixed files
(Dovecot's settings) are text files in ``templates/`` (``*.conf.in``: not Jinja) whose
``{{ name }}`` placeholders ``fill`` replaces; only the welcome mail, written by apply, uses
Jinja (imported there, not for every plan).
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import re
from email.headerregistry import Address
from email.message import EmailMessage
from functools import cache
from importlib.resources import files

from mailstate.files import quota_warning
from mailstate.files.formats import dovecot, lines, postfix, postgrey, sieve
from mailstate.files.paths import through_current
from mailstate.model.layout import Facts, Layout, Rendered, RenderedFile
from mailstate.model.passwords import WEAK_SCHEMES
from mailstate.model.state import Domain, Mailbox, ServerState
from mailstate.model.values import check_login

# What parse accepts as a login read from a server (looser than what mailstate writes).
LIVE_LOGIN = re.compile(r"[a-z0-9][a-z0-9._-]*")
PASSWD_MODE = 0o640  # hashes: readable by root and the Dovecot auth process only
PASSWD_GROUP = "dovecot"  # Dovecot's auth process runs as the internal user, not root
DISABLED_REASON = "REJECT primary address disabled"


@cache
def _load(name: str) -> str:
    return (files("mailstate.templates") / name).read_text(encoding="utf-8")


_PLACEHOLDER = re.compile(r"\{\{ ([a-z_.]+) \}\}")


def fill(name: str, values: dict[str, object]) -> bytes:
    """A fixed template with each ``{{ name }}`` replaced (a missing value is a KeyError)."""
    return _PLACEHOLDER.sub(lambda m: str(values[m[1]]), _load(name)).encode("utf-8")


def _file(header: str, rows: list[str]) -> bytes:
    """A line file: the managed-by header, then one line per row."""
    return "".join([header, "\n", *(row + "\n" for row in rows)]).encode("utf-8")


@cache
def _jinja():  # type: ignore[no-untyped-def]
    """Jinja, for the welcome mail only (apply), so that validate and plan never import it."""
    import jinja2

    return jinja2.Environment(loader=jinja2.FunctionLoader(_load),
                              undefined=jinja2.StrictUndefined, autoescape=False,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


def login(value: str) -> str:
    """A login that is safe as a file name and as a passwd-file user: the same rule as the
    domain files' (``check_login``), checked again where it becomes a file's bytes."""
    return check_login(value)


def _by_address(entries: dict[str, tuple[str, ...]], alias: bool = False) -> list[tuple[str, str]]:
    """Encoded (key, value) lines grouped by domain, then by local part (catch-all first).

    Encoding happens here, in Python, rather than in template filters: the maps of a large
    server have tens of thousands of lines and the templates only lay them out.
    """
    ordered = sorted(entries.items(), key=lambda kv: tuple(reversed(kv[0].rsplit("@", 1))))
    if alias:
        return [(postfix.key(k), postfix.targets(v)) for k, v in ordered]
    return [(postfix.key(k), " ".join(postfix.word(w) for w in v)) for k, v in ordered]


def sieve_forward(mb: Mailbox) -> bool:
    """Forwarding goes to Sieve when a vacation must still answer but no copy is kept."""
    return mb.vacation is not None and not mb.keep_copy and bool(mb.forward)


def _put(entries: dict[str, tuple[str, ...]], key: str, value: tuple[str, ...]) -> None:
    if key in entries:
        raise ValueError(f"address {key} is defined twice")
    entries[key] = value


def alias_entries(domain: Domain) -> dict[str, tuple[str, ...]]:
    """virtual_aliases entries of one domain, domain aliases expanded per address."""
    entries: dict[str, tuple[str, ...]] = {}
    at = "@" + domain.name
    for mb in domain.mailboxes.values():
        primary = mb.address
        targets: tuple[str, ...] = (primary,)
        if mb.forward and not sieve_forward(mb):
            targets = ((primary,) if mb.keep_copy else ()) + mb.forward
        _put(entries, primary, targets)
        for extra in mb.addresses:
            _put(entries, _at_domain(extra, at), (primary,))
    for key, targets in domain.aliases.items():
        _put(entries, _at_domain(key, at), targets)
    for alias_domain in domain.domain_aliases:
        for key in list(entries):
            if key.endswith(at):
                _put(entries, key[: -len(at)] + "@" + alias_domain, (key,))
    if domain.catch_all:
        for name in (domain.name, *domain.domain_aliases):
            _put(entries, "@" + name, domain.catch_all)
    return entries


def _at_domain(address: str, at: str) -> str:
    if not address.endswith(at) or len(address) == len(at):
        raise ValueError(f"{address} is not an address at {at[1:]}")
    return address


def vacation_addresses(mb: Mailbox, domain: Domain) -> list[str]:
    """Every address that reaches the mailbox, so Sieve answers mail sent to any of them."""
    own = ([mb.address] if mb.primary_enabled else []) + list(mb.addresses)
    locals_ = [a.rsplit("@", 1)[0] for a in own]
    return sorted(own + [f"{lp}@{ad}" for ad in domain.domain_aliases for lp in locals_])


def _postfix_files(state: ServerState, layout: Layout) -> list[RenderedFile]:
    domains = sorted(state.domains.values(), key=lambda d: d.name)
    aliases: dict[str, tuple[str, ...]] = {}
    mailboxes: dict[str, tuple[str, ...]] = {}
    rejects: dict[str, tuple[str, ...]] = {}
    for d in domains:
        for key, value in alias_entries(d).items():
            _put(aliases, key, value)
        for mb in d.mailboxes.values():
            path = f"{d.name}/{login(mb.login)}/Maildir/"
            for address in (mb.address, *mb.addresses):
                _put(mailboxes, address, (path,))
            if not mb.primary_enabled:
                for name in (d.name, *d.domain_aliases):
                    _put(rejects, f"{mb.login}@{name}", tuple(DISABLED_REASON.split()))
    alias_domains = sorted((ad, d.name) for d in domains for ad in d.domain_aliases)
    names = [d.name for d in domains] + [ad for ad, _ in alias_domains]
    if len(set(names)) != len(names):
        raise ValueError("a domain is hosted or aliased twice: " + ", ".join(
            sorted({n for n in names if names.count(n) > 1})))
    contents = {
        "virtual_mailbox_domains": _file(
            lines.header("hosted mail domains"),
            [f"{postfix.domain(d.name)} OK" for d in domains]),
        "virtual_alias_domains": _file(
            lines.header("domain aliases -> their domain"),
            [f"{postfix.domain(a)} {postfix.domain(d)}" for a, d in alias_domains]),
        "virtual_mailboxes": _file(
            lines.header("addresses of mailboxes -> mailbox"),
            [f"{k} {v}" for k, v in _by_address(mailboxes)]),
        "virtual_aliases": _file(
            lines.header("addresses -> delivery targets"),
            [f"{k} {v}" for k, v in _by_address(aliases, alias=True)]),
        "recipient_access": _file(
            lines.header("disabled primary addresses"),
            [f"{k} {v}" for k, v in _by_address(rejects)]),
    }
    return [
        RenderedFile(path=f"{layout.postfix_dir}/{name}", content=content, service="postfix",
                     postmap=True)
        for name, content in contents.items()
    ]


def postfix_settings(state: ServerState, layout: Layout, facts: Facts) -> dict[str, str]:
    """main.cf parameters, applied with ``postconf -e``; main.cf itself is never rewritten."""
    table = f"{facts.db_type}:{layout.postfix_dir}"
    restrictions = [
        f"check_recipient_access {table}/recipient_access",
        "permit_mynetworks",
        "reject_unauth_destination",
        # An unknown recipient gets 550 at once, before greylisting would make a typo wait.
        "reject_unlisted_recipient",
        # A full mailbox (or a message over what is left, when the client gave SIZE) is
        # refused here, in the sender's own session: accepted and bounced later, the bounce
        # would go to a sender address anyone can forge (backscatter).
        f"check_policy_service unix:{layout.quota_status_socket}",
    ]
    if state.greylisting.enabled:
        restrictions.append(f"check_policy_service inet:{layout.postgrey_inet}")
    return {
        "virtual_mailbox_domains": f"{table}/virtual_mailbox_domains",
        "virtual_alias_domains": f"{table}/virtual_alias_domains",
        "virtual_mailbox_maps": f"{table}/virtual_mailboxes",
        "virtual_alias_maps": f"{table}/virtual_aliases",
        "virtual_transport": f"lmtp:unix:{layout.lmtp_socket}",
        "smtpd_recipient_restrictions": ", ".join(restrictions),
    }


def sieve_path(layout: Layout, mb: Mailbox) -> str:
    return f"{layout.sieve_dir}/{login(mb.login)}.sieve"


def passwd_extras(mb: Mailbox, layout: Layout, facts: Facts) -> list[str]:
    """Per-user Dovecot fields: the quota and, if the mailbox has one, its Sieve script."""
    if facts.dovecot24:
        out = [dovecot.QUOTA_24 + dovecot.size(mb.quota, zero="unlimited")]
        if mb.vacation is not None:
            out.append(dovecot.SIEVE_24 + through_current(layout, sieve_path(layout, mb)))
    else:
        out = [dovecot.QUOTA_23 + dovecot.size(mb.quota)]
        if mb.vacation is not None:
            out.append(dovecot.SIEVE_23 + through_current(layout, sieve_path(layout, mb))
                       + dovecot.SIEVE_23_BINDIR)
    return out


# Dovecot 2.4 refuses weak schemes unless allowed (2.3 only logs a warning): the users of an
# adopted server keep their passwords.
WEAK_SCHEMES_24 = """
# Some passwords are MD5-CRYPT hashes (carried over from /etc/shadow), which Dovecot 2.4
# refuses by default. Allowed while any is left; a new password is hashed with a strong scheme.
auth_allow_weak_schemes = yes
"""


def _dovecot_files(state: ServerState, layout: Layout, facts: Facts) -> list[RenderedFile]:
    users = []
    weak = False
    for mb in sorted(state.mailboxes().values(), key=lambda m: m.login):
        home, uid, gid = layout.home_of(mb.login, mb.domain)
        weak = weak or mb.password.startswith(WEAK_SCHEMES)
        users.append((dovecot.field(login(mb.login), "user"), dovecot.password(mb.password),
                      uid, gid, dovecot.field(mb.name, "real name"), dovecot.field(home, "home"),
                      " ".join(dovecot.extra(e) for e in passwd_extras(mb, layout, facts))))
    passwd_path = f"{layout.dovecot_dir}/passwd"
    logins_path = f"{layout.dovecot_dir}/logins"
    names = sorted((name, mb.login) for d in state.domains.values()
                   for mb in d.mailboxes.values()
                   for name in (mb.login, *(f"{mb.login}@{n}" for n in (d.name,
                                                                        *d.domain_aliases))))
    logins = _file(lines.header("the names each mailbox logs in with"),
                   [f"{dovecot.field(n, 'user')}:::::::noauthenticate user={login(b)}"
                    for n, b in names])
    passwd = _file(lines.header("Dovecot users"),
                   [f"{user}:{password}:{uid}:{gid}:{name}:{home}::{extras}"
                    for user, password, uid, gid, name, home, extras in users])
    name = "dovecot-2.4.conf.in" if facts.dovecot24 else "dovecot-2.3.conf.in"
    first_uid, first_gid = layout.first_valid_ids()
    conf = fill(name, {"header": lines.header("virtual mailboxes, quota, LMTP, Sieve"),
                       "passwd": passwd_path, "logins": logins_path,
                       "first_uid": first_uid, "first_gid": first_gid,
                       "weak_schemes": WEAK_SCHEMES_24 if weak else "",
                       "layout.lmtp_socket": layout.lmtp_socket,
                       "layout.quota_status_socket": layout.quota_status_socket,
                       "quota_warnings": quota_warning.settings(state.quota_warnings, layout,
                                                                facts)})
    return [*quota_warning.files(state.quota_warnings, layout),
        RenderedFile(path=logins_path, content=logins, service="dovecot"),
        RenderedFile(path=passwd_path, content=passwd, mode=PASSWD_MODE, service="dovecot",
                     group=PASSWD_GROUP),
        RenderedFile(path=layout.dovecot_fragment, content=conf, service="dovecot"),
    ]


def sieve_script(mb: Mailbox, domain: Domain) -> bytes:
    """The vacation (and, with no copy kept, forwarding) script of one mailbox."""
    v = mb.vacation
    assert v is not None
    out = [lines.header(f"vacation of {mb.address}"),
           'require ["date", "relational", "vacation", "vacation-seconds"];', "", "if allof ("]
    if v.start:
        out.append(f'    currentdate :value "ge" "date" {sieve.string(v.start.isoformat())},')
    if v.end:
        out.append(f'    currentdate :value "le" "date" {sieve.string(v.end.isoformat())},')
    out += ['    not exists "List-Id",', '    not exists "List-Unsubscribe",',
            '    not header :is "Precedence" ["bulk", "list", "junk"],',
            '    not allof (exists "Auto-Submitted", not header :is "Auto-Submitted" "no")',
            ") {", f"    vacation :seconds {int(v.interval)}",
            f"        :subject {sieve.string(v.subject)}"]
    if v.sender:
        out.append(f"        :from {sieve.string(v.sender)}")
    addresses = vacation_addresses(mb, domain)
    if addresses:
        out.append(f"        :addresses {sieve.string_list(addresses)}")
    out += [f"        {sieve.string(v.message)};", "}"]
    out += [f"redirect {sieve.string(t)};" for t in (mb.forward if sieve_forward(mb) else ())]
    return _file(out[0], out[1:])


def _sieve_files(state: ServerState, layout: Layout) -> list[RenderedFile]:
    return [
        RenderedFile(path=sieve_path(layout, mb), content=sieve_script(mb, d), service="dovecot")
        for d in state.domains.values()
        for mb in d.mailboxes.values()
        if mb.vacation is not None
    ]


def _postgrey_files(state: ServerState, layout: Layout) -> list[RenderedFile]:
    g = state.greylisting
    off = sorted(n for d in state.domains.values() if not d.greylisting
                 for n in (d.name, *d.domain_aliases))
    var = postgrey.ENABLED_VAR
    made = {
        layout.postgrey_default: _file(lines.header("postgrey options"), [
            f"# {var} tells mailstate whether Postfix asks postgrey "
            "(smtpd_recipient_restrictions).",
            f'POSTGREY_OPTS="--inet={postgrey.shell_word(layout.postgrey_inet)} '
            f"--delay={int(g.delay)} --max-age={int(g.max_age)} "
            f'--auto-whitelist-clients={int(g.auto_whitelist_clients)}"',
            f'{var}="{"yes" if g.enabled else "no"}"']),
        f"{layout.postgrey_dir}/whitelist_clients.local": _file(
            lines.header("clients never greylisted"),
            [postgrey.client(c) for c in sorted(g.whitelist_clients)]),
        f"{layout.postgrey_dir}/whitelist_recipients.local": _file(
            lines.header("domains and addresses without greylisting"),
            [*(postgrey.recipient_domain(d) for d in off),
             *(postgrey.recipient_address(a) for a in sorted(g.whitelist_recipients))]),
    }
    return [RenderedFile(path=p, content=c, service="postgrey") for p, c in made.items()]


def _mailstate_files(layout: Layout) -> list[RenderedFile]:
    """mailstate's own program on the server: what the read-only SSH key may run."""
    from mailstate.files.programs import program_path, read_program

    return [RenderedFile(path=program_path(layout), content=read_program(layout), mode=0o755,
                         service="mailstate")]


GROUPS = frozenset({"postfix", "dovecot", "sieve", "postgrey", "mailstate"})


def file_group(path: str, layout: Layout) -> str:
    """Which part of render makes a path (so a caller can ask for only some parts)."""
    if path.startswith(layout.sieve_dir + "/"):
        return "sieve"
    if path.startswith(layout.postfix_dir + "/"):
        return "postfix"
    if path == layout.postgrey_default or path.startswith(layout.postgrey_dir + "/"):
        return "postgrey"
    if path.startswith(layout.state_dir + "/"):
        return "mailstate"
    return "dovecot"


def render(state: ServerState, layout: Layout, facts: Facts,
           groups: set[str] | frozenset[str] = GROUPS) -> Rendered:
    """Every file of one server (or of the given groups), sorted by path, and main.cf settings."""
    parts = {"postfix": lambda: _postfix_files(state, layout),
             "dovecot": lambda: _dovecot_files(state, layout, facts),
             "sieve": lambda: _sieve_files(state, layout),
             "postgrey": lambda: _postgrey_files(state, layout),
             "mailstate": lambda: _mailstate_files(layout)}
    made = [f for name, make in parts.items() if name in groups for f in make()]
    return Rendered(
        files=tuple(sorted(made, key=lambda f: f.path)),
        postfix_settings=postfix_settings(state, layout, facts),
    )


def render_welcome(
    mailbox: Mailbox, *, server: str | None = None, now: dt.datetime | None = None,
    protocols: tuple[str, ...] = ("imap",),
) -> bytes:
    """The welcome mail of a new mailbox (RFC 5322, CRLF), headers built by ``email``.

    The real name is the customer's text. Folded at 78 columns, the ``email`` package can
    drop the quotes around a long display name, and "Support, evil@attacker.test, (…" then
    reads as three recipients. So the mail is read back and must name exactly the mailbox as
    its one recipient; if the usual folding does not keep it so, headers are written unfolded
    (names are short: a line stays far below 998 characters). It is sent to an explicit
    envelope recipient anyway (see ``welcome_recipient``), never with ``sendmail -t``.

    It names only the protocols the server reported (Facts.protocols): telling a user about
    POP3 on a server without dovecot-pop3d sends them to a port that refuses them.
    """
    domain = mailbox.domain
    body = welcome_body(mailbox, server=server, protocols=protocols)
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = Address("Postmaster", "postmaster", domain)
    msg["To"] = Address(mailbox.name, mailbox.login, domain)
    msg["Subject"] = "Welcome to your new mailbox"
    msg["Date"] = email.utils.format_datetime(now or dt.datetime.now(dt.UTC))
    msg["Message-ID"] = email.utils.make_msgid("welcome", domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    for fold in (email.policy.SMTP, email.policy.SMTP.clone(max_line_length=998)):
        raw = msg.as_bytes(policy=fold)
        if welcome_recipients(raw) == [welcome_recipient(mailbox)]:
            return raw
    raise ValueError(f"the real name of mailbox {mailbox.login} cannot be written safely as "
                     "a mail header; simplify it")


def welcome_body(mailbox: Mailbox, *, server: str | None = None,
                 protocols: tuple[str, ...] = ("imap",)) -> str:
    """The welcome mail's text (also used by mailstate.files.welcome, which writes simple mails
    without the email package)."""
    addresses = ([mailbox.address] if mailbox.primary_enabled else []) + list(mailbox.addresses)
    offered = [p for p in ("imap", "pop3") if p in protocols]
    return _jinja().get_template("welcome.txt.j2").render(
        mb=mailbox, addresses=addresses, quota=_human_size(mailbox.quota),
        server=server or f"mail.{mailbox.domain}", protocols=offered)


def welcome_recipients(raw: bytes) -> list[str]:
    """Every recipient address a mail's headers name, as a reader parses them."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    return [a.addr_spec for field in ("To", "Cc", "Bcc")
            for header in parsed.get_all(field) or () for a in header.addresses]


def welcome_recipient(mailbox: Mailbox) -> str:
    """The envelope recipient of the welcome mail: the mailbox itself, nothing from headers."""
    return f"{mailbox.login}@{mailbox.domain}"


def _human_size(n: int) -> str:
    """Quota for people: '3 GiB', or 'unlimited' for Dovecot's 0."""
    text = dovecot.size(n)
    return "unlimited" if text == "0" else f"{text[:-1]} {text[-1].upper()}iB"
