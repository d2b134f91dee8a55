"""Password hashes in the schemes Dovecot understands, made and checked with libpass.

Domain files live in git, so they hold hashes only. A value that is not a well-formed hash of
a supported scheme is refused, with the command that makes one.

Besides the schemes mailstate makes, the crypt(3) schemes found in ``/etc/shadow`` of servers
that come under mailstate (MD5-CRYPT, SHA256-CRYPT, and yescrypt as Dovecot's ``{CRYPT}``,
which hands it to the system's libxcrypt) are accepted, so that users keep their passwords.
"""

from __future__ import annotations

import functools
import re

SCHEMES = ("ARGON2ID", "BLF-CRYPT", "SHA512-CRYPT", "SHA256-CRYPT", "MD5-CRYPT")


@functools.cache
def _handler(scheme: str):  # type: ignore[no-untyped-def]
    """passlib's handler of a scheme (imported when a hash is first checked: most runs that
    check none, such as a plan from the plan cache, do not pay for it)."""
    from passlib.hash import argon2, bcrypt, md5_crypt, sha256_crypt, sha512_crypt

    return {"ARGON2ID": argon2, "BLF-CRYPT": bcrypt, "SHA512-CRYPT": sha512_crypt,
            "SHA256-CRYPT": sha256_crypt, "MD5-CRYPT": md5_crypt}[scheme]


# yescrypt ($y$params$salt$hash, the default of Debian 11 and later): no Python checker, so
# the shape is checked; Dovecot's CRYPT scheme verifies it through crypt(3).
# Its cost is in the parameters: only Debian's default ("j9T", login.defs cost 5) is accepted,
# so that a domain file cannot choose a cost that turns each login into a denial of service.
_YESCRYPT = re.compile(r"\$y\$j9T\$[./A-Za-z0-9]{1,86}\$[./A-Za-z0-9]{43}")
CRYPT_PREFIXES = {"$1$": "MD5-CRYPT", "$5$": "SHA256-CRYPT", "$6$": "SHA512-CRYPT",
                  "$2a$": "BLF-CRYPT", "$2b$": "BLF-CRYPT", "$2y$": "BLF-CRYPT", "$y$": "CRYPT"}
# Accepted so that users keep their passwords, but weak: Dovecot 2.4 refuses them by default.
WEAK_SCHEMES = ("{MD5-CRYPT}",)
DEFAULT_SCHEME = "ARGON2ID"
HOW_TO = "make one with `mailstate hash-password` and paste its output"

# Dovecot pays a hash's work factor on every login attempt for that user, in its auth process:
# a domain file must not choose a cost that turns logins into a denial of service. The limits
# are a few times the costs `hash-password` uses (bcrypt 10, 100,000 rounds, 64 MiB x 3).
MAX_BCRYPT_COST = 14
MAX_SHA512_ROUNDS = 1_000_000
MAX_ARGON2_MEMORY_KIB = 256 * 1024
MAX_ARGON2_TIME = 10
MAX_ARGON2_PARALLELISM = 4
_NOT_IN_HASH = re.compile(r"[\s:\x00-\x1f\x7f]")


def hash_password(password: str, scheme: str = DEFAULT_SCHEME) -> str:
    """Hash a password for Dovecot: '{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$…'."""
    if not password:
        raise ValueError("an empty password is not allowed")
    if scheme == "ARGON2ID":
        # Dovecot's own defaults for ARGON2ID (64 MiB, 3 passes), so `doveadm pw` agrees.
        digest = _handler("ARGON2ID").using(type="ID", memory_cost=65536, rounds=3,
                                            parallelism=1).hash(password)
    elif scheme == "BLF-CRYPT":
        if len(password.encode("utf-8")) > 72:
            raise ValueError("BLF-CRYPT (bcrypt) uses at most 72 bytes of a password; "
                             "use --scheme ARGON2ID for a longer one")
        digest = _handler("BLF-CRYPT").using(ident="2y", rounds=10).hash(password)
    elif scheme == "SHA512-CRYPT":
        digest = _handler("SHA512-CRYPT").using(rounds=100_000).hash(password)
    else:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    return f"{{{scheme}}}{digest}"


@functools.lru_cache(maxsize=4096)
def check_hash(value: object) -> str:
    """Accept a '{SCHEME}hash' string of a supported scheme; refuse plain text clearly."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"a password must be a hash; {HOW_TO}")
    if not value.startswith("{") or "}" not in value:
        raise ValueError(f"this looks like a plain-text password, which may not be in git; "
                         f"{HOW_TO}")
    scheme, _, digest = value[1:].partition("}")
    if scheme == "CRYPT":
        if not _YESCRYPT.fullmatch(digest):
            raise ValueError("{CRYPT} is accepted for yescrypt hashes with Debian's default "
                             f"cost ($y$j9T$...) only, and this one is not; {HOW_TO}")
        return value
    if scheme.upper() in ("PLAIN", "CLEAR", "CLEARTEXT", "PLAIN-TRUNC"):
        raise ValueError(f"{{{scheme}}} is a plain-text password, which may not be in git; "
                         f"{HOW_TO}")
    if _NOT_IN_HASH.search(value):
        raise ValueError("a password hash holds no ':', spaces or control characters (the "
                         f"passwd-file would read them as further fields); {HOW_TO}")
    if scheme not in SCHEMES:
        raise ValueError(f"unsupported password scheme {{{scheme}}}; use one of "
                         f"{', '.join('{' + s + '}' for s in SCHEMES)}; {HOW_TO}")
    try:
        parsed = _handler(scheme).from_string(digest)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the {{{scheme}}} hash is malformed ({exc}); {HOW_TO}") from None
    if scheme == "ARGON2ID" and parsed.type != "id":
        raise ValueError(f"{{ARGON2ID}} needs an $argon2id$ hash, not $argon2{parsed.type}$")
    _check_cost(scheme, parsed)
    return value


def _check_cost(scheme: str, parsed: object) -> None:
    """Refuse work factors above the limits, naming the limit."""
    def cost(name: str) -> int:
        return int(getattr(parsed, name))

    limits: list[tuple[str, int, int, str]] = []
    if scheme == "BLF-CRYPT":
        limits.append(("bcrypt cost", cost("rounds"), MAX_BCRYPT_COST, ""))
    elif scheme == "SHA512-CRYPT":
        limits.append(("SHA512-CRYPT rounds", cost("rounds"), MAX_SHA512_ROUNDS, ""))
    elif scheme == "ARGON2ID":
        limits += [("argon2 memory", cost("memory_cost"), MAX_ARGON2_MEMORY_KIB, " KiB"),
                   ("argon2 time cost", cost("rounds"), MAX_ARGON2_TIME, ""),
                   ("argon2 parallelism", cost("parallelism"), MAX_ARGON2_PARALLELISM, "")]
    for what, value, limit, unit in limits:
        if value > limit:
            raise ValueError(f"{what} {value:,}{unit} is above the limit of {limit:,}{unit} "
                             "(every login attempt pays it in Dovecot's auth process); "
                             f"{HOW_TO}")


def from_shadow(field: str) -> str | None:
    """A crypt(3) hash from /etc/shadow as a Dovecot '{SCHEME}hash', or None when Dovecot
    could not check it (DES, a locked '!' or disabled '*' entry, an unknown scheme)."""
    for prefix, scheme in CRYPT_PREFIXES.items():
        if field.startswith(prefix):
            value = f"{{{scheme}}}{field}"
            try:
                return check_hash(value)
            except ValueError:
                return None
    return None


def verify_password(password: str, value: str) -> bool:
    scheme, _, digest = value[1:].partition("}")
    return bool(_handler(scheme).verify(password, digest))


# A hash wherever it sits: '{SCHEME}…' or a bare crypt string ($2y$, $6$, $argon2id$ …), up to
# the next ':' or space. Used on every line a view or log shows from a server's files.
_HASH_TEXT = re.compile(r"\{[A-Za-z0-9._-]+\}[^\s:]+|\$(?:2[abxy]?|[1567]|y|gy|argon2(?:id|i|d)"
                        r"|md5|sha1|sha256|sha512)\$[^\s:]+")


def mask_hashes(text: str) -> str:
    """`text` with every password hash replaced by '<hash>'."""
    return _HASH_TEXT.sub("<hash>", text)
