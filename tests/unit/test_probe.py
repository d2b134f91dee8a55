"""Which mailboxes apply opens on the server after a reload (the mailbox probe)."""

from __future__ import annotations

from mailstate.apply import PROBE_MAX, probe_logins
from mailstate.model.state import Vacation

from .samples import mailbox, one_domain

HASH = "{SHA512-CRYPT}$6$salt$hash"


def test_new_mailboxes_then_sieve_users_then_one_other() -> None:
    away = Vacation(subject="Away", message="Back soon")
    state = one_domain(mailbox("a", password=HASH), mailbox("b", password=HASH),
                       mailbox("c", password=HASH, vacation=away),
                       mailbox("d", password=HASH))
    assert probe_logins(["d"], state.mailboxes()) == ["d", "c", "a"]
    assert probe_logins([], state.mailboxes()) == ["c", "a"]
    assert probe_logins([], {}) == []


def test_at_most_probe_max() -> None:
    boxes = [mailbox(f"m{i:03d}", password=HASH) for i in range(3 * PROBE_MAX)]
    state = one_domain(*boxes)
    new = [b.login for b in boxes]
    assert probe_logins(new, state.mailboxes()) == new[:PROBE_MAX]
