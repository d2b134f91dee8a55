"""After `mailstate apply` over SSH, real SMTP and IMAP show that mail goes where the domain
files say: mailboxes and their extra addresses, forwards with and without a copy, forward-only
and role aliases, domain aliases, unknown users refused at RCPT, removed mailboxes, changed
passwords, welcome mails, POP3. One test host for the module; each test has its own domain."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mailstate.server.read import parse_protocols
from tests.integration.mail import (
    WELCOME_SUBJECT,
    LoginFailed,
    Site,
    can_login,
    login_refused,
    password_hash,
    pop3_read,
    rcpt,
    send,
    settle,
    sink_for,
    subjects,
    token,
    wait_for_subject,
    wait_sink,
)
from tests.testhost import TestHost

pytestmark = pytest.mark.integration
HOST_NAME = "delivery"

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "monsite.be.yaml"
PW = "Test-Password-1"
OUT = "outside.example"


def mailbox(name: str, password: str = PW, **fields: object) -> dict[str, object]:
    return {"name": name, "password": password_hash(password), **fields}


def sender() -> str:
    return f"sender-{token()}@{OUT}"


def assert_refused(host: TestHost, address: str) -> None:
    code, text = rcpt(host, sender(), address)
    assert 500 <= code < 600, f"{address}: expected a 5xx at RCPT, got {code} {text}"


# --- the manual's example, as shipped -------------------------------------------------------
def test_example_domain_file(site: Site, host: TestHost) -> None:
    """examples/monsite.be.yaml, unchanged: its hashes are of the passwords it documents."""
    site.accounts["monsite"] = "recommended"
    site.owned["monsite"] = {"monsite.be", "monsite.com"}
    shutil.copy(EXAMPLE, site.domain_path("monsite.be"))
    site.apply()
    subject = f"example {token()}"
    frm = sender()
    send(host, frm, "info@monsite.be", subject)
    wait_for_subject(host, "monsite0001", "Info-Example-1", subject)
    forwarded = wait_sink(host, "monsite@gmail.com", subject)
    assert forwarded.mail_from == frm
    assert_refused(host, "nobody@monsite.be")
    assert_refused(host, "nobody@monsite.com")
    assert can_login(host, "monsite", "Monsite-Example-1")


# --- 1. mailboxes ---------------------------------------------------------------------------
def test_mailbox_receives_at_primary_and_extra_addresses(site: Site, host: TestHost) -> None:
    argon_password = "Argon-Password-1"
    site.apply({
        "domain": "boxes.be",
        "mailboxes": {
            "boxes": mailbox("Administrator"),
            "boxes0001": {"name": "Info", "addresses": ["info", "contact"],
                          "password": password_hash(argon_password, "ARGON2ID")},
        },
    })
    sent = {}
    for address in ("boxes0001@boxes.be", "info@boxes.be", "contact@boxes.be"):
        sent[address] = f"to {address} {token()}"
        send(host, sender(), address, sent[address])
    for subject in sent.values():
        got = wait_for_subject(host, "boxes0001", argon_password, subject)
    assert set(sent.values()) <= set(got)
    assert not set(sent.values()) & set(subjects(host, "boxes", PW))


def test_imap_login_needs_the_password_of_the_hash(site: Site, host: TestHost) -> None:
    site.apply({"domain": "login.be", "mailboxes": {"login": mailbox("Administrator")}})
    assert can_login(host, "login", PW)
    assert login_refused(host, "login", PW + "x")


# --- 2. forwarding --------------------------------------------------------------------------
def test_forward_keeping_a_copy_and_without(site: Site, host: TestHost) -> None:
    site.apply({
        "domain": "forward.be",
        "mailboxes": {
            "forward": mailbox("Administrator"),
            "forward0001": mailbox("Keeps a copy", forward={
                "to": [f"keep@{OUT}"], "keep_copy": True}),
            "forward0002": mailbox("Passes on", forward={
                "to": [f"away@{OUT}", f"away2@{OUT}"], "keep_copy": False}),
        },
    })
    kept, passed = f"kept {token()}", f"passed {token()}"
    frm = sender()
    send(host, frm, "forward0001@forward.be", kept)
    send(host, frm, "forward0002@forward.be", passed)

    assert wait_sink(host, f"keep@{OUT}", kept).mail_from == frm
    wait_for_subject(host, "forward0001", PW, kept)

    got = wait_sink(host, f"away@{OUT}", passed)
    assert got.mail_from == frm
    wait_sink(host, f"away2@{OUT}", passed)
    settle(host)
    assert passed not in subjects(host, "forward0002", PW)


# --- 4. aliases -----------------------------------------------------------------------------
def test_forward_only_alias_and_role_aliases(site: Site, host: TestHost) -> None:
    site.apply({
        "domain": "roles.be",
        "mailboxes": {"roles": mailbox("Administrator"), "roles0001": mailbox("Info")},
        "aliases": {"frederic": [f"frederic@{OUT}"], "team": ["roles0001"]},
    })
    frm = sender()
    subject = f"alias {token()}"
    send(host, frm, "frederic@roles.be", subject)
    assert wait_sink(host, f"frederic@{OUT}", subject).mail_from == frm

    team = f"team {token()}"
    send(host, frm, "team@roles.be", team)
    wait_for_subject(host, "roles0001", PW, team)

    roles = {r: f"{r} {token()}" for r in ("abuse", "hostmaster", "postmaster", "webmaster")}
    for role, subj in roles.items():
        send(host, frm, f"{role}@roles.be", subj)
    for subj in roles.values():
        wait_for_subject(host, "roles", PW, subj)
    settle(host)
    assert not set(roles.values()) & set(subjects(host, "roles0001", PW))


def test_role_alias_sent_elsewhere(site: Site, host: TestHost) -> None:
    site.apply({
        "domain": "roles2.be",
        "admin": "roles20001",
        "role_aliases": {"abuse": [f"abuse-desk@{OUT}"]},
        "mailboxes": {"roles20001": mailbox("Boss")},
    })
    frm = sender()
    abuse, post = f"abuse {token()}", f"postmaster {token()}"
    send(host, frm, "abuse@roles2.be", abuse)
    send(host, frm, "postmaster@roles2.be", post)
    wait_sink(host, f"abuse-desk@{OUT}", abuse)
    wait_for_subject(host, "roles20001", PW, post)


# --- 5. domain aliases, unknown users -------------------------------------------------------
def test_domain_alias_delivers_to_the_same_mailbox(site: Site, host: TestHost) -> None:
    site.apply({
        "domain": "main.be",
        "domain_aliases": ["main-alias.com"],
        "mailboxes": {"main": mailbox("Administrator"),
                      "main0001": mailbox("Info", addresses=["info"])},
    })
    sent = {}
    for address in ("main0001@main-alias.com", "info@main-alias.com", "info@main.be"):
        sent[address] = f"to {address} {token()}"
        send(host, sender(), address, sent[address])
    for subject in sent.values():
        wait_for_subject(host, "main0001", PW, subject)
    post = f"postmaster {token()}"
    send(host, sender(), "postmaster@main-alias.com", post)
    wait_for_subject(host, "main", PW, post)


def test_unknown_users_are_refused_at_rcpt(site: Site, host: TestHost) -> None:
    site.apply({
        "domain": "strict.be",
        "domain_aliases": ["strict-alias.com"],
        "mailboxes": {"strict": mailbox("Administrator")},
    })
    frm = sender()
    for address in ("nobody@strict.be", "nobody@strict-alias.com", "strict0001@strict.be",
                    "info@strict-alias.com"):
        code, text = rcpt(host, frm, address)
        assert code == 550 and "5.1.1" in text, (address, code, text)
    # Refused, so nothing was accepted that could bounce later.
    settle(host)
    assert sink_for(host, frm) == []


# --- 8. removed mailbox ---------------------------------------------------------------------
def test_removed_mailbox_refuses_mail_and_keeps_its_maildir(site: Site, host: TestHost) -> None:
    domain = {
        "domain": "gone.be",
        "domain_aliases": ["gone.eu"],
        "mailboxes": {"gone": mailbox("Administrator"),
                      "gone0001": mailbox("Leaving", addresses=["sales"])},
    }
    site.apply(domain)
    subject = f"before removal {token()}"
    send(host, sender(), "sales@gone.be", subject)
    wait_for_subject(host, "gone0001", PW, subject)

    del domain["mailboxes"]["gone0001"]  # type: ignore[attr-defined]
    result = site.apply(domain)
    assert "gone0001" in result.stdout
    for address in ("gone0001@gone.be", "sales@gone.be", "sales@gone.eu"):
        assert_refused(host, address)
    assert login_refused(host, "gone0001", PW)
    maildir = host.host_path("/var/vmail/gone.be/gone0001/Maildir")
    kept = [p for sub in ("new", "cur") for p in (maildir / sub).iterdir()]
    assert any(subject.encode() in p.read_bytes() for p in kept), kept


# --- 9. password change ---------------------------------------------------------------------
def test_changed_password(site: Site, host: TestHost) -> None:
    old, new = "Old-Password-1", "New-Password-2"
    domain = {"domain": "pass.be", "mailboxes": {"pass": mailbox("Administrator", old)}}
    site.apply(domain)
    assert can_login(host, "pass", old)
    domain["mailboxes"]["pass"] = mailbox("Administrator", new)  # type: ignore[index]
    site.apply(domain)
    assert can_login(host, "pass", new)
    assert login_refused(host, "pass", old)


# --- 10. welcome mail -----------------------------------------------------------------------
def test_welcome_mail_once(site: Site, host: TestHost) -> None:
    domain = {
        "domain": "welcome.be",
        "mailboxes": {"welcome": mailbox("Administrator"),
                      "welcome0001": mailbox("New person"),
                      "welcome0002": mailbox("No welcome", welcome=False)},
    }
    result = site.apply(domain)
    assert "sent welcome mail welcome0001" in result.stdout
    wait_for_subject(host, "welcome0001", PW, WELCOME_SUBJECT)

    # A change to the mailbox, then an apply without changes: no second welcome mail.
    domain["mailboxes"]["welcome0001"]["addresses"] = ["hello"]  # type: ignore[index]
    again = site.apply(domain)
    assert "sent welcome mail" not in again.stdout
    assert "No changes" in site.apply().stdout
    settle(host)
    assert subjects(host, "welcome0001", PW).count(WELCOME_SUBJECT) == 1
    assert WELCOME_SUBJECT not in subjects(host, "welcome0002", PW)



def test_welcome_mail_with_a_hostile_name_reaches_only_the_mailbox(site: Site,
                                                                   host: TestHost) -> None:
    """A real name folded into recipients by `sendmail -t` sent the welcome mail to the
    attacker; the envelope now names the mailbox and nothing else."""
    evil = f"evil-{token()}@{OUT}"
    name = f"Customer Service Department of Example, {evil}, (see the attached"
    result = site.apply({"domain": "hostile.be",
                         "mailboxes": {"hostile": mailbox("Administrator", welcome=False),
                                       "hostile0001": mailbox(name)}})
    assert "sent welcome mail hostile0001" in result.stdout
    wait_for_subject(host, "hostile0001", PW, WELCOME_SUBJECT)
    settle(host)
    assert sink_for(host, evil) == []


# --- 11. POP3 -------------------------------------------------------------------------------
def test_pop3_login_listing_and_retrieval(site: Site, host: TestHost) -> None:
    """The manual's "POP server (receiving)": every mailbox over POP3 too, same Maildir."""
    site.apply({"domain": "pop.be",
                "mailboxes": {"pop": mailbox("Administrator"), "pop0001": mailbox("Reader")}})
    subject = f"by pop3 {token()}"
    send(host, sender(), "pop0001@pop.be", subject)
    wait_for_subject(host, "pop0001", PW, subject)

    seen = pop3_read(host, "pop0001", PW)
    by_subject = {m["Subject"]: m for m in seen.messages}
    assert subject in by_subject and WELCOME_SUBJECT in by_subject, list(by_subject)
    assert len(seen.listing) == len(seen.messages) == len(seen.uidls) == 2
    assert all(size > 0 for _, size in seen.listing)
    # UIDLs in Dovecot 2.3's form on both versions: clients keep their state across an upgrade.
    # (uid, then uidvalidity, 8 lower-case hex digits each; the first message has uid 1)
    assert all(len(u) == 16 and u == u.lower() and int(u, 16) >= 0 for u in seen.uidls)
    assert sorted(u[:8] for u in seen.uidls) == ["00000001", "00000002"]
    # The server offers POP3, so the welcome mail names it, with IMAP.
    welcome = by_subject[WELCOME_SUBJECT].get_content()
    assert "POP3" in welcome and "IMAP" in welcome
    # INBOX is the Maildir itself (Debian 13's stock mail_inbox_path must not win).
    maildir = host.host_path("/var/vmail/pop.be/pop0001/Maildir")
    kept = [p for sub in ("new", "cur") for p in (maildir / sub).iterdir()]
    assert any(subject.encode() in p.read_bytes() for p in kept), kept
    # Retrieval leaves the mail on the server (nothing was deleted) ...
    assert subject in subjects(host, "pop0001", PW)
    # ... and a wrong password is refused (from the second address: failures delay logins).
    with pytest.raises(LoginFailed):
        pop3_read(host, "pop0001", "Wrong-Password-9", source=host.runner_ip2)


def test_welcome_mail_without_pop3_names_imap_only(site: Site, host: TestHost) -> None:
    """A server without POP3: the welcome mail must not send users to port 110/995."""
    off = "protocols = imap lmtp\n" if host.release == "12" else "protocols {\n  pop3 = no\n}\n"
    host.exec(["tee", "/etc/dovecot/local.conf"], input=off)
    host.exec("doveadm reload")
    try:
        offered = parse_protocols(host.exec("doveconf -h protocols").stdout)
        assert "imap" in offered and "pop3" not in offered
        site.apply({"domain": "nopop.be",
                    "mailboxes": {"nopop": mailbox("Administrator", welcome=False),
                                  "nopop0001": mailbox("Reader")}})
        wait_for_subject(host, "nopop0001", PW, WELCOME_SUBJECT)
        body = host.exec(
            "grep -rl 'Welcome to your new mailbox' /var/vmail/nopop.be/nopop0001/Maildir"
            " | head -1 | xargs cat").stdout
        assert "IMAP" in body and "143" in body
        assert "POP3" not in body and "110" not in body
    finally:
        host.exec("rm -f /etc/dovecot/local.conf && doveadm reload")
