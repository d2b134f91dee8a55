"""Users stay connected through applies: an IMAP session in IDLE and a POP3 session opened
before ten applies, each of which changes something (a quota, a new mailbox, an alias, a
vacation, a forward, greylisting), are still connected and working after them, and the mail
daemons were reloaded, never restarted (their master processes are the same)."""

from __future__ import annotations

import copy
import imaplib
import time
from collections.abc import Callable

import pytest

from tests.integration.mail import (
    _IMAP4,
    _POP3,
    Site,
    password_hash,
    send,
    token,
    wait_for_subject,
)
from tests.testhost import TestHost
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
HOST_NAME = "sessions"

PW = "Sessions-Password-1"
OUT = "outside.example"


def box(name: str, **fields: object) -> dict[str, object]:
    return {"name": name, "password": password_hash(PW), "welcome": False, **fields}


DOMAIN: dict = {
    "domain": "sessions.be",
    "mailboxes": {
        "sessions": box("Administrator"),
        "sessions0001": box("IMAP user", quota="1G"),
        "sessions0002": box("POP3 user", quota="1G"),
    },
}


def changes() -> list[dict]:
    """Ten domain files, each one change on from the one before."""
    steps, current = [], copy.deepcopy(DOMAIN)

    def step(edit: Callable[[dict, dict], object]) -> None:
        nonlocal current
        current = copy.deepcopy(current)
        edit(current["mailboxes"], current)
        steps.append(current)

    step(lambda m, d: m["sessions0001"].update(quota="2G"))  # the IDLE user's own quota
    step(lambda m, d: m.update(sessions0003=box("New")))
    step(lambda m, d: d.update(aliases={"sales": ["sessions0001"]}))
    step(lambda m, d: m["sessions0003"].update(vacation={"subject": "Away",
                                                         "message": "I am away.\n"}))
    step(lambda m, d: m["sessions0002"].update(quota="2G"))  # the POP3 user's own quota
    step(lambda m, d: m["sessions0003"].update(forward={"to": [f"x@{OUT}"]}))
    step(lambda m, d: d.update(greylisting=False))
    step(lambda m, d: m["sessions0001"].update(addresses=["info"]))
    step(lambda m, d: m.pop("sessions0003"))
    step(lambda m, d: m["sessions0002"].update(name="POP3 user, renamed"))
    return steps


def masters(host: TestHost) -> dict[str, str]:
    """The process ids of the Dovecot and Postfix master processes."""
    found = {}
    for name, comm in (("dovecot", "dovecot"), ("postfix", "master")):
        found[name] = host.exec(
            f"for d in /proc/[0-9]*; do [ \"$(cat $d/comm 2>/dev/null)\" = {comm} ] && "
            "echo ${d#/proc/}; done | sort -n | head -1").stdout.strip()
        assert found[name], f"no {comm} process on the host"
    return found


def read_until(client: imaplib.IMAP4, wanted: bytes, timeout: float) -> list[bytes]:
    """Lines the server sends in IDLE until one contains `wanted` (a deadline, not a sleep)."""
    lines: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            line = client.readline()
        except TimeoutError:
            break
        if not line:
            raise AssertionError(f"the IMAP server closed the session; it said {lines}")
        lines.append(line)
        if wanted in line:
            return lines
    raise AssertionError(f"no {wanted!r} within {timeout} s in IDLE; got {lines}")


def test_imap_idle_and_pop3_sessions_survive_ten_applies(site: Site, host: TestHost) -> None:
    site.apply(DOMAIN)
    imap_user, pop_user = "sessions0001", "sessions0002"
    before = token()
    send(host, f"a@{OUT}", f"{pop_user}@sessions.be", f"before {before}")
    wait_for_subject(host, pop_user, PW, f"before {before}")

    imap = _IMAP4(host.ip, host.runner_ip)
    imap.login(imap_user, PW)
    imap.select("INBOX")
    tag = imap._new_tag()  # imaplib has no IDLE before Python 3.14: the command by hand
    imap.send(tag + b" IDLE\r\n")
    assert imap.readline().startswith(b"+"), "the server did not enter IDLE"

    pop = _POP3(host.ip, host.runner_ip)
    pop.user(pop_user)
    pop.pass_(PW)
    count, _ = pop.stat()
    assert count == 1

    pids = masters(host)
    for n, domain in enumerate(changes(), 1):
        result = site.apply(domain)
        assert "to change" in result.output or "to add" in result.output, (n, result)

    assert masters(host) == pids, "a mail daemon was restarted where a reload serves"
    # IMAP: the session still idles and hears of new mail, then answers commands
    after = token()
    send(host, f"b@{OUT}", f"{imap_user}@sessions.be", f"after {after}")
    read_until(imap, b"EXISTS", timeout=60)
    imap.send(b"DONE\r\n")
    done = read_until(imap, tag, timeout=30)
    assert b"OK" in done[-1], done
    imap.sock.settimeout(30)
    status, data = imap.search(None, "SUBJECT", f"\"after {after}\"")
    assert status == "OK" and data[0].split(), data
    assert imap.noop()[0] == "OK"
    imap.logout()
    # POP3: the session still answers and reads its message
    assert pop.noop().startswith(b"+OK")
    assert pop.stat()[0] == 1
    _, lines, _ = pop.retr(1)
    assert any(f"before {before}".encode() in line for line in lines)
    pop.quit()
    wait_until(lambda: site.plan("--detailed-exitcode").code, 30, "a plan with no changes",
               until=lambda code: code == 0)
