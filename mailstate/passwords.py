"""Password hashes in the schemes Dovecot understands, made and checked with libpass.

Domain files live in git, so they hold hashes only. A value that is not a well-formed hash of
a supported scheme is refused, with the command that makes one.
"""

from __future__ import annotations

import functools

from passlib.hash import argon2, bcrypt, sha512_crypt

SCHEMES = {"ARGON2ID": argon2, "BLF-CRYPT": bcrypt, "SHA512-CRYPT": sha512_crypt}
DEFAULT_SCHEME = "ARGON2ID"
HOW_TO = "make one with `mailstate hash-password` and paste its output"


def hash_password(password: str, scheme: str = DEFAULT_SCHEME) -> str:
    """Hash a password for Dovecot: '{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$…'."""
    if not password:
        raise ValueError("an empty password is not allowed")
    if scheme == "ARGON2ID":
        # Dovecot's own defaults for ARGON2ID (64 MiB, 3 passes), so `doveadm pw` agrees.
        digest = argon2.using(type="ID", memory_cost=65536, rounds=3, parallelism=1).hash(password)
    elif scheme == "BLF-CRYPT":
        if len(password.encode("utf-8")) > 72:
            raise ValueError("BLF-CRYPT (bcrypt) uses at most 72 bytes of a password; "
                             "use --scheme ARGON2ID for a longer one")
        digest = bcrypt.using(ident="2y", rounds=10).hash(password)
    elif scheme == "SHA512-CRYPT":
        digest = sha512_crypt.using(rounds=100_000).hash(password)
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
    if scheme.upper() in ("PLAIN", "CLEAR", "CLEARTEXT", "PLAIN-TRUNC"):
        raise ValueError(f"{{{scheme}}} is a plain-text password, which may not be in git; "
                         f"{HOW_TO}")
    handler = SCHEMES.get(scheme)
    if handler is None:
        raise ValueError(f"unsupported password scheme {{{scheme}}}; use one of "
                         f"{', '.join('{' + s + '}' for s in SCHEMES)}; {HOW_TO}")
    try:
        parsed = handler.from_string(digest)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the {{{scheme}}} hash is malformed ({exc}); {HOW_TO}") from None
    if scheme == "ARGON2ID" and parsed.type != "id":
        raise ValueError(f"{{ARGON2ID}} needs an $argon2id$ hash, not $argon2{parsed.type}$")
    return value


def verify_password(password: str, value: str) -> bool:
    scheme, _, digest = value[1:].partition("}")
    return bool(SCHEMES[scheme].verify(password, digest))
