"""Validated scalar values: logins, domains, addresses, sizes, durations, free text.

Every byte mailstate renders comes from a value that passed one of these checks. The rules are
strict on purpose: a character that could change the meaning of a Postfix map, a passwd-file,
a Sieve script or a shell file (whitespace, ``:``, ``,``, ``#``, quotes, ``/``, ``..``, NUL,
control characters) is refused with a message that says what to write instead; nothing is
escaped silently into a different meaning.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from fractions import Fraction
from typing import Annotated

import idna
from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

MAX_LOGIN = 64
MAX_LOCAL = 64
MAX_DOMAIN = 253
MAX_NAME = 100
MAX_SUBJECT = 200
MAX_MESSAGE = 10_000

_LOGIN = re.compile(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?")
_LOCAL = re.compile(r"[a-z0-9](?:[a-z0-9._+-]*[a-z0-9_])?")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt])(i?b)?", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MIB = 1024**2
GIB = 1024**3
# abuse@ hostmaster@ postmaster@ webmaster@: made for every domain (the manual)
ROLE_ALIASES = ("abuse", "hostmaster", "postmaster", "webmaster")
MAX_SIZE = 1024**5  # 1024T: more than any disk, small enough for every daemon's counters


def _describe(ch: str) -> str:
    if ch == " ":
        return "a space"
    if ch.isprintable():
        return repr(ch)
    return f"the control character U+{ord(ch):04X}"


def _first_bad(text: str, allowed: re.Pattern[str]) -> str | None:
    for ch in text:
        if not allowed.fullmatch(ch):
            return ch
    return None


def check_login(value: str) -> str:
    """A mailbox login: lower-case letters, digits, '.', '_' and '-' (manual: monsite0001)."""
    if not isinstance(value, str) or not value:
        raise ValueError("a login must be a non-empty string like monsite0001")
    if len(value) > MAX_LOGIN:
        raise ValueError(f"a login has at most {MAX_LOGIN} characters, this one {len(value)}")
    if ".." in value or "/" in value:
        raise ValueError("a login may not contain '/' or '..' (it names a directory on the server)")
    if not _LOGIN.fullmatch(value):
        bad = _first_bad(value, re.compile(r"[a-z0-9._-]"))
        why = (f"it contains {_describe(bad)}" if bad
               else "it must start and end with a letter or digit")
        raise ValueError(
            f"{value!r} is not a valid login: {why}; use lower-case letters, digits, '.', '_', '-'"
        )
    return value


def check_domain(value: str) -> str:
    """A DNS domain. Internationalised names are accepted and stored as A-labels (xn--)."""
    if not isinstance(value, str) or not value:
        raise ValueError("a domain must be a non-empty name like monsite.be")
    name = value[:-1] if value.endswith(".") else value  # a fully qualified name's final dot
    if any(not ch.isprintable() or ch.isspace() for ch in name):
        bad = next(ch for ch in name if not ch.isprintable() or ch.isspace())
        raise ValueError(f"{value!r} is not a domain: it contains {_describe(bad)}")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"{value!r} is not a valid internationalised domain: {exc}") from None
    name = name.lower()
    if len(name) > MAX_DOMAIN:
        raise ValueError(f"a domain has at most {MAX_DOMAIN} characters")
    labels = name.split(".")
    if len(labels) < 2:
        raise ValueError(f"{value!r} is not a full domain name; write e.g. monsite.be")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise ValueError(
                f"{value!r} is not a valid domain: label {label!r} must be 1-63 letters, digits "
                "or '-', not starting or ending with '-'"
            )
        if label.startswith("xn--"):
            try:
                idna.ulabel(label)
            except (idna.IDNAError, UnicodeError) as exc:
                raise ValueError(f"{value!r} is not a valid domain: {label!r} is not a valid "
                                 f"punycode label ({exc}); write the name in Unicode") from None
    if labels[-1].isdigit():
        raise ValueError(f"{value!r} is not a domain name (an IP address is not allowed here)")
    return name


def check_local_part(value: str) -> str:
    """The part before '@': letters, digits, '.', '_', '+', '-' (no quotes, spaces, commas)."""
    if not isinstance(value, str) or not value:
        raise ValueError("an address needs a non-empty part before '@'")
    local = value.lower()
    if len(local) > MAX_LOCAL:
        raise ValueError(f"the part before '@' has at most {MAX_LOCAL} characters")
    if ".." in local:
        raise ValueError(f"{value!r}: '..' is not allowed in an address")
    if not _LOCAL.fullmatch(local):
        bad = _first_bad(local, re.compile(r"[a-z0-9._+-]"))
        why = f"it contains {_describe(bad)}" if bad else "it must start with a letter or digit"
        raise ValueError(
            f"{value!r} is not a valid address part: {why}; use letters, digits, '.', '_', '+', '-'"
        )
    return local


def check_address(value: str) -> str:
    """A full address local@domain, lower-cased, domain as A-labels."""
    if not isinstance(value, str) or value.count("@") != 1:
        raise ValueError(f"{value!r} is not an e-mail address; write e.g. info@monsite.be")
    local, domain = value.split("@")
    return f"{check_local_part(local)}@{check_domain(domain)}"


def check_name(value: str) -> str:
    """A real name: printable text on one line without ':' (passwd-file field separator)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a name must be non-empty text")
    if len(value) > MAX_NAME:
        raise ValueError(f"a name has at most {MAX_NAME} characters")
    for ch in value:
        if ch == ":" or (unicodedata.category(ch).startswith(("C", "Z")) and ch != " "):
            raise ValueError(f"a name may not contain {_describe(ch)}")
    if value != value.strip():
        raise ValueError("a name may not start or end with a space")
    return value


def check_subject(value: str) -> str:
    """One line of text (a mail header): no control characters, at most 200 characters."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a subject must be non-empty text")
    if len(value) > MAX_SUBJECT:
        raise ValueError(f"a subject has at most {MAX_SUBJECT} characters")
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise ValueError(f"a subject is one line of text; it may not contain {_describe(ch)}")
    return value


def check_message(value: str) -> str:
    """Multi-line text: line ends normalised to LF, no NUL or other control characters."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a message must be non-empty text")
    text = value.replace("\r\n", "\n")
    if len(text) > MAX_MESSAGE:
        raise ValueError(f"a message has at most {MAX_MESSAGE} characters")
    for ch in text:
        if ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            raise ValueError(f"a message may not contain {_describe(ch)}")
    return text


def parse_size(value: object) -> int:
    """'500M', '3G', '3GiB' -> bytes. Units are powers of 1024, as Dovecot's are.

    '3GB' is refused, not guessed: to most people GB means 10^9 bytes, to Dovecot G is 2^30."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("a size is written like 500M or 3G")
    if isinstance(value, int):
        raise ValueError(f"{value} has no unit; write e.g. {value}M or {value}G")
    m = _SIZE.fullmatch(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a size; write e.g. 500M or 3G (units of 1024)")
    number, unit, suffix = m.groups()
    if suffix and suffix.lower() == "b":
        raise ValueError(f"{value!r}: mailstate counts sizes in powers of 1024, as Dovecot does; "
                         f"write {number}{unit.upper()} or {number}{unit.upper()}iB "
                         f"({unit.upper()}B would mean powers of 1000)")
    if number.isdigit() and len(number) <= 7:  # the usual case, exact without Fraction
        size = int(number) * _UNITS[unit.lower()]
        if size % MIB:
            raise ValueError(f"{value!r} is not a whole number of megabytes")
        if size > MAX_SIZE:
            raise ValueError(f"{value!r} is too large a size; the limit is 1024T")
        return size
    if len(number) > 20:
        raise ValueError(f"{value[:24]!r}… is too large a size; the limit is 1024T")
    size = Fraction(number) * _UNITS[unit.lower()]  # exact: no float rounding, no overflow
    if size.denominator != 1 or size % MIB:
        raise ValueError(f"{value!r} is not a whole number of megabytes")
    if size > MAX_SIZE:
        raise ValueError(f"{value!r} is too large a size; the limit is 1024T")
    return int(size)


def format_size(size: int) -> str:
    """Bytes -> the largest exact unit, e.g. 3221225472 -> '3G'."""
    for unit in "TGMk":
        factor = _UNITS[unit.lower()]
        if size % factor == 0 and size >= factor:
            return f"{size // factor}{unit}"
    return f"{size}B"


def format_size_approx(size: int) -> str:
    """Bytes in use, for people: '2.9M', '1.2G' (one decimal, powers of 1024)."""
    for unit, factor in (("G", 1024**3), ("M", 1024**2)):
        if size >= factor:
            return f"{size / factor:.1f}{unit}"
    return f"{size // 1024}k"


def parse_duration(value: object) -> int:
    """'10m', '1h30m', '2d', or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is written like 10m, 1h or 2d")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value}: a duration cannot be negative; write e.g. 10m")
        return value
    if not isinstance(value, str):
        raise ValueError("a duration is written like 10m, 1h or 2d")
    text = value.strip().lower()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != text.replace(" ", ""):
        raise ValueError(f"{value!r} is not a duration; write e.g. 10m, 1h or 2d")
    return sum(int(n) * _SECONDS[u] for n, u in parts)


def format_duration(seconds: int) -> str:
    for unit, factor in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % factor == 0:
            return f"{seconds // factor}{unit}"
    return f"{seconds}s"


def check_client(value: str) -> str:
    """A postgrey whitelist client: an IP address or network, or a host or domain name."""
    import ipaddress

    try:
        if "/" in value:
            return str(ipaddress.ip_network(value, strict=False))
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    try:
        return check_domain(value)
    except ValueError:
        raise ValueError(f"{value!r} is neither an IP address or network (192.0.2.0/24) nor "
                         "a host name (mail.example.com)") from None


def check_domain_rule(value: str) -> str:
    """An operator's rule for the domains an account may use: a name, or ``*.name`` for
    every name under it (not the name itself)."""
    if isinstance(value, str) and value.startswith("*."):
        return "*." + check_domain(value[2:])
    return check_domain(value)


def check_client_network(value: str) -> str:
    """A whitelist client that is not every address: 0.0.0.0/0 would turn greylisting off for
    every sender on the server, which is what ``enabled: false`` says openly."""
    client = check_client(value)
    if client.endswith("/0"):
        raise ValueError(f"{value!r} is every address: it would turn greylisting off for all "
                         "senders; set `greylisting: {enabled: false}` for the server instead")
    return client


def parse_date(value: object) -> dt.date:
    """A calendar date, written YYYY-MM-DD. A number is refused: pydantic would read
    1767225600 as a Unix timestamp, and nobody means a vacation that way."""
    if isinstance(value, dt.datetime):
        raise ValueError(f"{value!r}: write a date without a time, as YYYY-MM-DD")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-12-20")


def _str_only(value: object) -> object:
    if isinstance(value, (int, float, bool)) or value is None:
        raise ValueError(f"expected text, got {type(value).__name__} {value!r}")
    return value


Login = Annotated[str, BeforeValidator(_str_only), AfterValidator(check_login)]
DomainName = Annotated[str, BeforeValidator(_str_only), AfterValidator(check_domain)]
Address = Annotated[str, BeforeValidator(_str_only), AfterValidator(check_address)]
LocalPart = Annotated[str, BeforeValidator(_str_only), AfterValidator(check_local_part)]
LocalOrAddress = Annotated[str, BeforeValidator(_str_only)]  # resolved against the domain later
RealName = Annotated[str, BeforeValidator(_str_only), AfterValidator(check_name)]
Subject = Annotated[str, BeforeValidator(_str_only), AfterValidator(check_subject)]
Message = Annotated[str, BeforeValidator(_str_only), AfterValidator(check_message)]
Client = Annotated[str, BeforeValidator(_str_only), AfterValidator(check_client_network)]
DomainRule = Annotated[str, BeforeValidator(_str_only), AfterValidator(check_domain_rule)]
Date = Annotated[dt.date, BeforeValidator(parse_date)]
# What editors see (yaml-language-server): the written form, not the number it becomes.
_SIZE_SCHEMA = {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[kKmMgGtT]([iI][bB])?\s*$",
                "examples": ["3G", "500M"]}
_DURATION_TEXT = {"type": "string", "pattern": r"^\s*(\d+\s*[smhdwSMHDW]\s*)+$",
                  "examples": ["10m", "1h", "2d"]}
Size = Annotated[int, BeforeValidator(parse_size), WithJsonSchema(_SIZE_SCHEMA)]
Duration = Annotated[int, BeforeValidator(parse_duration), WithJsonSchema(
    {"anyOf": [_DURATION_TEXT, {"type": "integer", "minimum": 0,
                                "description": "seconds"}]})]


def duration_between(low: int, high: int | None = None) -> object:
    """A Duration with bounds, checked after parsing (so that '10m' is compared as 600 s)."""

    def check(seconds: int) -> int:
        if seconds < low:
            raise ValueError(f"{format_duration(seconds)} is too short; the least is "
                             f"{format_duration(low)} (greater than or equal to {low} s)")
        if high is not None and seconds > high:
            raise ValueError(f"{format_duration(seconds)} is too long; the most is "
                             f"{format_duration(high)} (less than or equal to {high} s)")
        return seconds

    return Annotated[Duration, AfterValidator(check)]
