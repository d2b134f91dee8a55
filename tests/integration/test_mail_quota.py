"""Mailbox quota after `mailstate apply`: Postfix asks Dovecot's quota-status service at RCPT,
so mail for a full mailbox (or a message larger than the space left, when the client gives
SIZE) is refused in the sender's own session and no bounce is ever generated; a quota raised
in YAML takes effect with the next apply."""

from __future__ import annotations

import email
import email.policy
import subprocess

import pytest

from tests.integration.mail import (
    Site,
    imap,
    password_hash,
    queue,
    send,
    settle,
    sink_for,
    smtp,
    subjects,
    token,
    wait_for_subject,
)
from tests.testhost import TestHost

pytestmark = pytest.mark.integration
HOST_NAME = "quota"

PW = "Quota-Password-1"
BIG = "x" * 76 + "\n"  # one line; 20,000 of them are about 1.5 MiB


def domain(quota: str) -> dict[str, object]:
    return {
        "domain": "quota.be",
        "mailboxes": {
            "quota": {"name": "Administrator", "password": password_hash(PW)},
            "quota0001": {"name": "Small", "password": password_hash(PW), "quota": quota},
            "quota0002": {"name": "Warned", "password": password_hash(PW), "quota": "2M"},
        },
    }


def swaks(host: TestHost, frm: str, to: str, subject: str) -> subprocess.CompletedProcess[str]:
    """A whole SMTP session by swaks from the runner's second (not whitelisted) address."""
    return subprocess.run(
        ["swaks", "--server", host.ip, "--port", "25", "--local-interface", host.runner_ip2,
         "--helo", "runner.test", "--from", frm, "--to", to, "--header", f"Subject: {subject}",
         "--timeout", "30"],
        capture_output=True, text=True, timeout=60, check=False)


def test_full_mailbox_is_refused_at_rcpt_and_nothing_bounces(site: Site, host: TestHost) -> None:
    site.apply(domain("10M"))
    frm = f"big-{token()}@outside.example"
    fits = f"fits {token()}"
    send(host, frm, "quota0001@quota.be", fits, body=BIG * 20_000)
    wait_for_subject(host, "quota0001", PW, fits)

    # The mailbox now holds about 1.5 MiB: planning a quota of 1M warns before applying.
    site.write_domain(domain("1M"))
    plan = site.plan()
    assert plan.code == 0, plan
    assert "mailbox quota0001@quota.be holds" in plan.output, plan.output
    assert "more than its quota 1M" in plan.output, plan.output
    site.apply()

    sender = f"full-{token()}@outside.example"
    refused = f"refused {token()}"
    session = swaks(host, sender, "quota0001@quota.be", refused)
    transcript = session.stdout + session.stderr
    print(transcript)  # the closing note shows one
    assert session.returncode != 0, transcript
    assert "<** 552 5.2.2" in transcript and "Mailbox is full" in transcript, transcript
    assert "DATA" not in transcript.split("<** 552")[1].split("QUIT")[0], transcript

    # Nothing was accepted, so nothing bounces: no queue, no mail to the sender, no
    # MAILER-DAEMON anywhere.
    settle(host)
    assert "Mail queue is empty" in queue(host)
    assert not sink_for(host, sender), "a bounce reached the sender"
    assert host.sink is not None
    assert not [m for m in host.sink.messages()
                if "MAILER-DAEMON" in str(m.message["From"] or "")
                and refused in m.data.decode("utf-8", "replace")]
    assert refused not in subjects(host, "quota0001", PW)
    assert "Mailbox is full" in host.read_log("postfix"), host.read_log("postfix")[-2000:]


def test_message_larger_than_the_space_left_is_refused_when_size_is_given(
    site: Site, host: TestHost
) -> None:
    site.apply(domain("2M"))  # holds about 1.5 MiB (the test above) or less: room for ~0.5M
    usage = host.exec(["doveadm", "quota", "get", "-u", "quota0001"]).stdout
    assert "2048" in usage, usage
    frm = f"size-{token()}@outside.example"
    with smtp(host, host.runner_ip2) as client:
        code, text = client.mail(frm, ["SIZE=3000000"])
        assert code == 250, (code, text)
        code, text = client.rcpt("quota0001@quota.be")
        # Dovecot 2.3 says "too large" (5.2.3), 2.4 "full" (5.2.2): refused either way.
        assert code == 552 and text.startswith((b"5.2.2", b"5.2.3")), (code, text)
        client.rset()
        code, text = client.mail(frm, ["SIZE=1000"])
        assert code == 250, (code, text)
        code, text = client.rcpt("quota0001@quota.be")
        # Room for a small message: not refused by quota (greylisting may still ask to wait).
        assert code in (250, 450), (code, text)
        assert b"5.2" not in text, (code, text)


def test_raised_quota_lets_mail_in_again(site: Site, host: TestHost) -> None:
    site.apply(domain("10M"))
    frm = f"raised-{token()}@outside.example"
    fits = f"fits now {token()}"
    send(host, frm, "quota0001@quota.be", fits, body=BIG * 20_000)
    wait_for_subject(host, "quota0001", PW, fits)
    with_quota = host.exec(["doveadm", "quota", "get", "-u", "quota0001"]).stdout
    assert "10240" in with_quota, with_quota


def test_one_warning_mail_when_crossing_each_threshold(site: Site, host: TestHost) -> None:
    """80 % and 95 % (the defaults): each crossing delivers one mail into the mailbox itself;
    mail that stays above a threshold sends nothing more."""
    site.apply(domain("10M"))
    frm = f"warn-{token()}@outside.example"
    first = f"to 85 percent {token()}"
    send(host, frm, "quota0002@quota.be", first, body=BIG * 23_000)  # ~1.7 MiB of 2
    wait_for_subject(host, "quota0002", PW, "Your mailbox is 80 % full")
    second = f"to 97 percent {token()}"
    send(host, frm, "quota0002@quota.be", second, body=BIG * 3_500)  # ~0.25 MiB more
    got = wait_for_subject(host, "quota0002", PW, "Your mailbox is 95 % full")
    third = f"still above {token()}"
    send(host, frm, "quota0002@quota.be", third)
    got = wait_for_subject(host, "quota0002", PW, third)
    settle(host)
    got = subjects(host, "quota0002", PW)
    assert got.count("Your mailbox is 80 % full") == 1, got
    assert got.count("Your mailbox is 95 % full") == 1, got
    with imap(host, "quota0002", PW) as client:
        client.select("INBOX", readonly=True)
        _, data = client.search(None, "SUBJECT", '"95 % full"')
        _, fetched = client.fetch(data[0].split()[0], "(RFC822)")
    raw = fetched[0][1]
    warning = email.message_from_bytes(raw, policy=email.policy.default)
    print(raw.decode("utf-8", "replace"))  # the closing note shows one
    assert warning["To"] == "quota0002@quota.be", raw
    assert warning["From"] == "Postmaster <postmaster@quota.be>", raw
    assert warning["Auto-Submitted"] == "auto-generated", raw
    body = warning.get_content()
    assert "quota0002@quota.be" in body and "of its 2.0 MiB" in body, body
    assert not sink_for(host, "quota0002@quota.be"), "the warning must not leave the server"
