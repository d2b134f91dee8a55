"""Small valid inputs shared by the validation tests."""

from __future__ import annotations

from mailstate.model.state import Domain, Mailbox, ServerState

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


def mailbox(login: str = "jo", *, password: str, **fields: object) -> Mailbox:
    """A mailbox of x.be with a 1G quota; `fields` override anything."""
    base: dict[str, object] = dict(login=login, domain="x.be", name="Jo", password=password,
                                   quota=1024**3)
    base.update(fields)
    return Mailbox(**base)  # type: ignore[arg-type]


def one_domain(*boxes: Mailbox, **domain: object) -> ServerState:
    """A server holding only x.be with these mailboxes."""
    d = Domain(name="x.be", mailboxes={b.login: b for b in boxes}, **domain)  # type: ignore[arg-type]
    return ServerState(domains={"x.be": d})
