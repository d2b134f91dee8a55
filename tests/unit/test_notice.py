"""The new-domain notice: to the account's contact, once, with the services the server offers."""

from __future__ import annotations

import email
import email.policy
import shutil
from pathlib import Path

from click.testing import CliRunner

from mailstate.cli import main
from mailstate.files.notice import notice_text
from mailstate.model.layout import Facts
from mailstate.model.state import Domain

from .conftest import REPO

DOMAIN = Domain(name="monsite.be", domain_aliases=("monsite.com",))


def test_only_the_services_the_server_offers_are_named() -> None:
    both = notice_text(DOMAIN, "maximusconfessor", "monsite",
                       Facts(protocols=("imap", "lmtp", "pop3"), ssl="yes",
                             myhostname="maximusconfessor.all2all.org"))
    assert "IMAP server (receiving):  maximusconfessor.all2all.org, port 993 (SSL/TLS) or 143 " \
        "(STARTTLS)" in both
    assert "POP3 server (receiving):  maximusconfessor.all2all.org, port 995" in both
    assert "Domain name:              monsite.be" in both and "monsite.com" in both
    imap_only = notice_text(DOMAIN, "mx", "monsite", Facts(protocols=("imap", "lmtp"), ssl="no"))
    assert "IMAP server (receiving):  mx, port 143" in imap_only and "POP3" not in imap_only


def test_apply_sends_it_once_to_the_contact(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "examples" / "repo", repo)
    target = [arg for name in ("maximusconfessor", "gregorius")
              for arg in ("--target", f"{name}=local:{tmp_path}/servers/{name}")]
    runner = CliRunner()
    plan = runner.invoke(main, ["plan", str(repo), *target])
    lines = [x for x in plan.stdout.splitlines() if "new-domain notice" in x]
    assert lines == ["  new-domain notice to the account's contact: bakkerijpeeters.be",
                     "  new-domain notice to the account's contact: monsite.be"]
    # monsite.eu: its only mailbox says `welcome: false` (moved here): not set up, no notice
    result = runner.invoke(main, ["apply", str(repo), *target, "--auto-approve"])
    assert result.exit_code == 0, result.output
    outbox = tmp_path / "servers" / "maximusconfessor" / "var/lib/mailstate/outbox"
    mail = email.message_from_bytes((outbox / "@monsite.be.eml").read_bytes(),
                                    policy=email.policy.SMTP)
    assert mail["To"] == "monsite@gmail.com" and mail["Subject"] == \
        "Mail domain monsite.be is set up"
    body = mail.get_content()
    assert "Hosting server:           maximusconfessor" in body
    assert "$argon2id$" not in body and "{ARGON2ID}" not in body
    # accounts without a contact get none; a second apply sends nothing again
    assert not list(outbox.glob("@artstudio*"))
    before = sorted(p.name for p in outbox.iterdir())
    again = runner.invoke(main, ["apply", str(repo), *target, "--auto-approve"])
    assert again.exit_code == 0 and sorted(p.name for p in outbox.iterdir()) == before
