"""Small valid inputs shared by the validation tests."""

from __future__ import annotations

# The hash of "Monsite-Example-1" (argon2id, Dovecot's default parameters).
HASH = ("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$N4YQIqT0fi9lTMmZ8x6DcA"
        "$u81pxxOgnS3a2Iy3reMdzs6WvFe2b2v9ohpBpW+qOM4")

MINIMAL = f"""\
domain: monsite.be
account: monsite
mailboxes:
  monsite:
    name: Domain administrator
    password: "{HASH}"
"""
