"""Hypothesis strategies for valid ``ServerState`` values, reusable by every test module.

"Valid" means what validation and policy guarantee upstream: lower-case addresses, logins unique
per server, no address defined twice, alias domains distinct from hosted domains, sorted tuples,
quotas in whole MiB, texts without the characters their files cannot carry.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

from mailstate.model.state import (
    Domain,
    Greylisting,
    Mailbox,
    QuotaWarnings,
    ServerState,
    Vacation,
)
from mailstate.model.values import check_subject

MiB = 1024 * 1024

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
domain_name = st.builds(lambda a, b: f"{a}.{b}", label, st.sampled_from(["be", "com", "eu"]))
local_part = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,10}", fullmatch=True)
login = st.from_regex(r"[a-z0-9](?:[a-z0-9._-]{0,11}[a-z0-9])?", fullmatch=True).filter(
    lambda v: ".." not in v)  # check_login: what validation lets through
external = st.builds(lambda lp, d: f"{lp}@{d}", local_part, st.sampled_from(
    ["gmail.com", "example.org", "outside.net"]))

_b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_salt = st.text(alphabet=_b64, min_size=8, max_size=22)
password = st.one_of(
    st.builds(lambda s, h: f"{{ARGON2ID}}$argon2id$v=19$m=65536,t=3,p=1${s}${h}", _salt, _salt),
    st.builds(lambda s, h: f"{{SHA512-CRYPT}}$6${s}${h}", _salt,
              st.text(alphabet=_b64.replace("+", "."), min_size=20, max_size=86)),
)

# no control characters (Cc), no surrogates; real names also without ':'
_printable = st.characters(blacklist_categories=("Cc", "Cs"))
real_name = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs"),
                                           blacklist_characters=":"), max_size=30)
subject = st.text(alphabet=_printable, min_size=1, max_size=40)
# messages: anything but NUL and CR (LF-normalised), with the hard cases made likely
message = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                   blacklist_characters="\x00\r"), max_size=200),
    st.lists(st.sampled_from([".", "..", "", "  trailing  ", 'say "hi"', "back\\slash",
                              "\\", '"', "é ✓ 日本", "text:", "#", "/*", "\t"]),
             max_size=8).map("\n".join),
)
dates = st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2040, 12, 31))


@st.composite
def vacations(draw: st.DrawFn, own: list[str]) -> Vacation:
    start, end = draw(st.none() | dates), draw(st.none() | dates)
    if start and end and end < start:
        start, end = end, start
    return Vacation(
        subject=draw(subject), message=draw(message),
        sender=draw(st.none() | st.sampled_from(own)) if own else None,
        interval=draw(st.integers(1, 30 * 86400)), start=start, end=end)


@st.composite
def domains(draw: st.DrawFn, name: str, aliases: tuple[str, ...], logins: list[str]) -> Domain:
    """One domain; ``logins`` are this domain's share of the server-unique logins."""
    used = set(logins)
    locals_ = draw(st.lists(local_part.filter(lambda x: x not in used), unique=True,
                            max_size=8))
    boxes: dict[str, Mailbox] = {}
    for lg in logins:
        mine = [f"{x}@{name}" for x in locals_[: draw(st.integers(0, min(2, len(locals_))))]]
        locals_ = locals_[len(mine):]
        primary = draw(st.booleans())
        forward = tuple(sorted(set(draw(st.lists(external, max_size=3)))))
        own = ([f"{lg}@{name}"] if primary else []) + mine
        boxes[lg] = Mailbox(
            login=lg, domain=name, name=draw(real_name), password=draw(password),
            quota=draw(st.integers(0, 3 * 1024 * 1024)) * MiB, primary_enabled=primary,
            addresses=tuple(sorted(mine)), forward=forward,
            keep_copy=draw(st.booleans()) if forward else True,
            vacation=draw(st.none() | vacations(own)))
    local_targets = [f"{lg}@{name}" for lg in logins]
    target = st.sampled_from(local_targets) | external if local_targets else external
    alias_targets = st.lists(target, min_size=1, max_size=3, unique=True).map(
        lambda t: tuple(sorted(t)))
    aliases_ = {f"{x}@{name}": draw(alias_targets) for x in locals_}
    return Domain(
        name=name, domain_aliases=aliases, greylisting=draw(st.booleans()), mailboxes=boxes,
        aliases=aliases_, catch_all=draw(st.just(()) | alias_targets))


greylistings = st.builds(
    Greylisting, enabled=st.booleans(), delay=st.integers(0, 7200),
    max_age=st.integers(1, 365), auto_whitelist_clients=st.integers(0, 20),
    whitelist_clients=st.lists(
        st.sampled_from(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "mail.example.net",
                         "relay.partner.be"]), unique=True).map(lambda x: tuple(sorted(x))),
    whitelist_recipients=st.lists(
        st.sampled_from(["postmaster@example.be", "abuse@xn--mnchen-3ya.de", "a.b+c@d-e.eu"]),
        unique=True).map(lambda x: tuple(sorted(x))))


def _valid_subject(text: str) -> bool:
    try:
        return check_subject(text) == text
    except ValueError:
        return False


quota_warnings = st.builds(
    lambda ts, subj, msg: QuotaWarnings(thresholds=tuple(sorted(ts, reverse=True)),
                                        subject=subj, message=msg.rstrip("\n") + "\n")
    if ts else QuotaWarnings(thresholds=()),  # without thresholds no text is kept
    st.lists(st.integers(1, 100), unique=True, max_size=3),
    subject.filter(_valid_subject) | st.sampled_from(["Mailbox at {percent} %",
                                                      "Boîte pleine à {percent} %"]),
    message.filter(lambda m: m.strip()))


@st.composite
def server_states(draw: st.DrawFn, max_domains: int = 3) -> ServerState:
    """A whole server: domains with their aliases, mailboxes and greylisting settings."""
    names = draw(st.lists(domain_name, unique=True, min_size=0, max_size=max_domains * 2))
    hosted, spare = names[:max_domains], names[max_domains:]
    logins = draw(st.lists(login, unique=True, max_size=6))
    out: dict[str, Domain] = {}
    for i, name in enumerate(hosted):
        n_alias = draw(st.integers(0, len(spare)))
        aliases, spare = tuple(sorted(spare[:n_alias])), spare[n_alias:]
        share = logins[i::len(hosted)]
        out[name] = draw(domains(name, aliases, share))
    return ServerState(domains=out, greylisting=draw(greylistings),
                       quota_warnings=draw(quota_warnings))
