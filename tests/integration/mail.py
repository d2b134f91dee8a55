"""Helpers for the mail behaviour tests (test_mail_*.py): a repository applied to a real test
host with the `mailstate` command, SMTP from the runner's two client addresses, IMAP, and
waiting by polling.

Each test module starts its own host (`start_site`) and writes its scenarios as small domain
files (dicts) into one repository; every apply applies the whole repository, like an operator
would. Addresses and subjects are unique per test, so tests on one host do not see each
other's mail.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import functools
import imaplib
import io
import poplib
import smtplib
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from mailstate.model.passwords import hash_password
from tests.testhost import SinkMessage, TestHost
from tests.waiting import wait_until

SERVER = "maximusconfessor"
WELCOME_SUBJECT = "Welcome to your new mailbox"
# Generous enough for the whole repository of a module: the tests' plan is not what is tested.
TEST_PLAN = {"mailboxes": 2000, "mail_quota": None, "domains": None}


def dump_yaml(data: Any) -> str:
    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.dump(data, out)
    return out.getvalue()


@functools.cache
def password_hash(password: str, scheme: str = "SHA512-CRYPT") -> str:
    """A hash for the YAML (cached: every hash costs ~0.1 s, and Dovecot checks it per login).

    SHA512-CRYPT keeps logins fast; ARGON2ID (the default scheme) is tested where it matters.
    """
    return hash_password(password, scheme)


def token() -> str:
    return uuid.uuid4().hex[:12]


# --- the repository and the CLI -------------------------------------------------------------
@dataclass
class Cli:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> Cli:
    """`mailstate ARGS` as a subprocess, as an operator or CI runs it."""
    done = subprocess.run(
        [sys.executable, "-P", "-m", "mailstate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Cli(done.returncode, done.stdout, done.stderr)


@dataclass
class Site:
    """A test host plus a mailstate repository that targets it."""

    host: TestHost
    root: Path
    greylisting: dict[str, Any] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    layout: dict[str, Any] = field(default_factory=dict)
    plans: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # account -> plan
    owned: dict[str, set[str]] = field(default_factory=dict)  # account -> its domains

    @classmethod
    def create(cls, host: TestHost, root: Path) -> Site:
        site = cls(host, root)
        site.write_config()
        return site

    # --- files --------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        host = self.host
        server: dict[str, Any] = {
            "target": f"ssh://root@{host.ip}",
            "known_hosts": str(host.known_hosts_path),
            "identity": str(host.key_path),
            "commands": {
                "postfix_reload": host.commands["postfix_reload"],
                "dovecot_reload": host.commands["dovecot_reload"],
                "postgrey_restart": host.commands["postgrey_restart"],
                **self.commands,
            },
            "greylisting": {
                "delay": "5s",
                "whitelist_clients": [host.runner_ip],
                "auto_whitelist_clients": 0,
                **self.greylisting,
            },
        }
        if self.layout:
            server["layout"] = self.layout
        config: dict[str, Any] = {
            "servers": {SERVER: server},
            "plans": {"tests": TEST_PLAN, **self.plans},
            "accounts": {a: {"plan": p, "domains": sorted(self.owned.get(a, ()))}
                         for a, p in sorted(self.accounts.items())},
        }
        if self.defaults:
            config["defaults"] = self.defaults
        return config

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "domains").mkdir(exist_ok=True)
        (self.root / "mailstate.yaml").write_text(dump_yaml(self.config()))

    def domain_path(self, domain: str) -> Path:
        return self.root / "domains" / f"{domain}.yaml"

    def write_domain(self, data: dict[str, Any] | str) -> Path:
        """A domain file from a dict or from YAML text. A dict gets `server:` and, unless it
        has one, an account named like the domain's first label (so logins follow the
        <account>NNNN convention); the account is added to mailstate.yaml."""
        parsed = data if isinstance(data, dict) else YAML(typ="safe", pure=True).load(data)
        name = parsed["domain"]
        account = parsed.get("account") or name.split(".")[0]
        self.accounts.setdefault(account, "tests")
        self.owned.setdefault(account, set()).update([name, *parsed.get("domain_aliases", [])])
        if isinstance(data, dict):
            text = dump_yaml({"account": name.split(".")[0], "server": SERVER, **data})
        else:
            text = data
        path = self.domain_path(name)
        path.write_text(text)
        return path

    def remove_domain(self, domain: str) -> None:
        self.domain_path(domain).unlink(missing_ok=True)

    # --- commands -----------------------------------------------------------------------
    def cli(self, *args: str) -> Cli:
        self.write_config()
        return run_cli(*args, cwd=self.root)

    def apply(self, *domains: dict[str, Any] | str, check: bool = True) -> Cli:
        """Write these domain files (if any), then `mailstate apply --auto-approve`."""
        for data in domains:
            self.write_domain(data)
        result = self.cli("apply", "--auto-approve")
        if check:
            assert result.code == 0, f"apply failed:\n{result}"
        return result

    def plan(self, *args: str) -> Cli:
        return self.cli("plan", *args)


# --- SMTP -----------------------------------------------------------------------------------
def message(
    sender: str,
    to: str | list[str],
    subject: str,
    body: str = "hello\n",
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to if isinstance(to, str) else ", ".join(to)
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{token()}@runner.test>"
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg


def smtp(host: TestHost, source: str | None = None) -> smtplib.SMTP:
    client = smtplib.SMTP(
        host.ip, 25, source_address=(source or host.runner_ip, 0), timeout=30
    )
    client.ehlo("runner.test")
    return client


def send(
    host: TestHost,
    sender: str,
    rcpts: str | list[str],
    subject: str,
    *,
    body: str = "hello\n",
    headers: dict[str, str] | None = None,
    to: str | list[str] | None = None,
    source: str | None = None,
) -> None:
    """Send one message; raises smtplib errors (refused recipients included)."""
    rcpts = [rcpts] if isinstance(rcpts, str) else rcpts
    msg = message(sender, to or rcpts, subject, body, headers)
    with smtp(host, source) as client:
        refused = client.send_message(msg, from_addr=sender, to_addrs=rcpts)
    assert not refused, refused


def rcpt(host: TestHost, sender: str, recipient: str, source: str | None = None) -> tuple[int, str]:
    """MAIL FROM + RCPT TO only: the server's answer to the recipient (code, text)."""
    with smtp(host, source) as client:
        code, text = client.mail(sender)
        assert code == 250, (code, text)
        code, text = client.rcpt(recipient)
        client.rset()
    return code, text.decode("utf-8", "replace")


def try_send(
    host: TestHost, sender: str, recipient: str, subject: str, source: str | None = None
) -> tuple[int, str]:
    """A whole transaction that may be refused at RCPT: (RCPT code, text); DATA on 250."""
    with smtp(host, source) as client:
        code, text = client.mail(sender)
        assert code == 250, (code, text)
        code, text = client.rcpt(recipient)
        if code == 250:
            msg = message(sender, recipient, subject)
            data_code, data_text = client.data(msg.as_bytes())
            assert data_code == 250, (data_code, data_text)
    return code, text.decode("utf-8", "replace")


# --- IMAP -----------------------------------------------------------------------------------
class LoginFailed(Exception):
    pass


class _IMAP4(imaplib.IMAP4):
    """imaplib.IMAP4 from a chosen local address (the runner has two)."""

    def __init__(self, host: str, source: str) -> None:
        self._source = source
        super().__init__(host, 143, timeout=30)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection(
            (self.host, self.port), timeout, source_address=(self._source, 0)
        )


@contextlib.contextmanager
def imap(
    host: TestHost, user: str, password: str, source: str | None = None
) -> Iterator[imaplib.IMAP4]:
    """A logged-in IMAP session, from `source` (default: the runner's first address)."""
    client = _IMAP4(host.ip, source or host.runner_ip)
    try:
        try:
            client.login(user, password)
        except imaplib.IMAP4.error as exc:
            raise LoginFailed(f"IMAP login {user}: {exc}") from None
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def can_login(host: TestHost, user: str, password: str, source: str | None = None) -> bool:
    try:
        with imap(host, user, password, source):
            return True
    except LoginFailed:
        return False


def login_refused(host: TestHost, user: str, password: str) -> bool:
    """A login that must fail, tried from the second client address: after a failure,
    Dovecot delays every further login from that address (2 s, then up to ~6 s) until one
    succeeds, and the first address is kept for the logins that must work."""
    return not can_login(host, user, password, source=host.runner_ip2)


def subjects(host: TestHost, user: str, password: str) -> list[str]:
    """Subjects of the messages in the INBOX, oldest first."""
    with imap(host, user, password) as client:
        client.select("INBOX", readonly=True)
        _, data = client.search(None, "ALL")
        ids = data[0].split()
        if not ids:
            return []
        _, fetched = client.fetch(b",".join(ids), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    found = []
    for part in fetched:
        if isinstance(part, tuple):
            line = part[1].decode("utf-8", "replace").strip()
            found.append(line.partition(":")[2].strip())
    return found


@dataclass
class Pop3Mailbox:
    """What one POP3 session saw: the LIST and UIDL answers and every message, retrieved."""

    listing: list[tuple[int, int]]  # (number, size octets)
    uidls: list[str]
    messages: list[EmailMessage]


def pop3_read(host: TestHost, user: str, password: str, source: str | None = None) -> Pop3Mailbox:
    """Log in over POP3 (port 110, USER/PASS), LIST, UIDL and RETR every message.

    A refused login raises LoginFailed. Nothing is deleted.
    """
    client = _POP3(host.ip, source or host.runner_ip)
    try:
        try:
            client.user(user)
            client.pass_(password)
        except poplib.error_proto as exc:
            raise LoginFailed(f"POP3 login {user}: {exc}") from None
        _, lines, _ = client.list()
        listing = [(int(n), int(size)) for n, size in (line.split() for line in lines)]
        _, lines, _ = client.uidl()
        uidls = [line.split()[1].decode() for line in lines]
        messages = []
        for number, _ in listing:
            _, body, _ = client.retr(number)
            raw = b"\r\n".join(body) + b"\r\n"
            messages.append(email.message_from_bytes(raw, policy=email.policy.default))
        return Pop3Mailbox(listing, uidls, messages)  # type: ignore[arg-type]
    finally:
        with contextlib.suppress(Exception):
            client.quit()


class _POP3(poplib.POP3):
    """poplib.POP3 from a chosen local address (the runner has two)."""

    def __init__(self, host: str, source: str) -> None:
        self._source = source
        super().__init__(host, 110, timeout=30)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection(
            (self.host, self.port), timeout, source_address=(self._source, 0)
        )


def wait_for_subject(
    host: TestHost, user: str, password: str, subject: str, timeout: float = 20
) -> list[str]:
    """Wait until a message with this subject is in the mailbox; all subjects then."""
    try:
        return wait_until(lambda: subjects(host, user, password), timeout,
                          f"{subject!r} in {user}'s INBOX", until=lambda got: subject in got)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nqueue:\n{queue(host)}\npostfix.log tail:\n"
                             f"{host.read_log('postfix')[-3000:]}") from None


# --- the host's queue and the sink ----------------------------------------------------------
def queue(host: TestHost) -> str:
    return host.exec(["postqueue", "-p"]).stdout


def wait_queue_empty(host: TestHost, timeout: float = 20) -> None:
    """Every accepted message has been delivered or bounced (and its bounce sent on)."""
    wait_until(lambda: queue(host), timeout, "an empty mail queue",
               until=lambda listing: "Mail queue is empty" in listing)


def settle(host: TestHost) -> None:
    """Before asserting that something did NOT happen: nothing may still be on its way."""
    wait_queue_empty(host)


def sink_for(host: TestHost, rcpt_to: str, subject_part: str = "") -> list[SinkMessage]:
    """Messages the sink received for this envelope recipient (and subject part)."""
    assert host.sink is not None
    return [
        m for m in host.sink.messages()
        if rcpt_to in m.rcpt_tos and subject_part in str(m.message["Subject"] or "")
    ]


def wait_sink(host: TestHost, rcpt_to: str, subject_part: str = "", timeout: float = 20):
    assert host.sink is not None
    return host.sink.wait_for(
        lambda m: rcpt_to in m.rcpt_tos and subject_part in str(m.message["Subject"] or ""),
        timeout=timeout,
    )
