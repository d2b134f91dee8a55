"""The whole loop on the local target: render, read back, plan, apply, and again.

A temporary directory stands for the server's root; the same server scripts a real server runs
do the reading and the activation, with the server programs skipped. Each test goes through the
CLI (in-process) or the Python API (``prepare`` + ``apply_server``), as a user or a pipeline
would.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mailstate.apply import apply_server
from mailstate.engine.retention import keep
from mailstate.plan import FileAction
from mailstate.server.local import LocalTransport
from mailstate.server.transport import TransportError

from .conftest import EXAMPLE, LocalServer

MANAGED = [
    "etc/default/postgrey",
    "etc/dovecot/conf.d/99-mailstate.conf",
    "etc/dovecot/mailstate/logins",
    "etc/dovecot/mailstate/passwd",
    "etc/dovecot/mailstate/quota-warning.sh",
    "etc/dovecot/mailstate/quota-warning.txt",
    "etc/dovecot/mailstate/sieve/monsite0001.sieve",
    "etc/postfix/mailstate/recipient_access",
    "etc/postfix/mailstate/virtual_alias_domains",
    "etc/postfix/mailstate/virtual_aliases",
    "etc/postfix/mailstate/virtual_mailbox_domains",
    "etc/postfix/mailstate/virtual_mailboxes",
    "etc/postgrey/whitelist_clients.local",
    "etc/postgrey/whitelist_recipients.local",
    "var/lib/mailstate/read-only",
]
ADMIN_HASH = "N4YQIqT0fi9lTMmZ8x6DcA$u81pxxOgnS3a2Iy3reMdzs6WvFe2b2v9ohpBpW+qOM4"
INFO_HASH = "cA5B6D1nTIlRKuWcU2qt9Q$y8AONqAfifKKZVjyxj9nHQu2IzUJDKM9StmxylEpdic"
ALIASES = "etc/postfix/mailstate/virtual_aliases"
PASSWD = "etc/dovecot/mailstate/passwd"


def edit(text: str, old: str, new: str) -> str:
    assert old in text, f"{old!r} is not in the file"
    return text.replace(old, new, 1)


def example(old: str = "", new: str = "") -> str:
    text = EXAMPLE.read_text()
    return edit(text, old, new) if old else text


def without(text: str, start: str, end: str) -> str:
    """The text with the lines from `start` up to (not including) `end` left out."""
    i, j = text.index(start), text.index(end)
    return text[:i] + text[j:]


def ok(result, code: int = 0) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, result.output
    return result.output


def update_manifest(server: LocalServer, path: str) -> None:
    """Record a file's current content as what mailstate wrote (so it is not drift)."""
    manifest_path = server.state_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    data = (server.root / path).read_bytes()
    manifest["files"]["/" + path] = hashlib.sha256(data).hexdigest()
    manifest_path.write_text(json.dumps(manifest, indent=1))


def live(server: LocalServer) -> dict[str, bytes]:
    """What a failed or refused apply must leave alone: every file, the lock file and the
    runs' logs aside."""
    return {p: c for p, c in server.contents().items()
            if p not in ("var/lib/mailstate/lock", "var/lib/mailstate/lock.holder")
            and not p.startswith("var/lib/mailstate/runs/")}


@contextmanager
def lock_held(server: LocalServer) -> Iterator[None]:
    """Another process holds flock(1) on the server's lock until the block ends."""
    lock = server.state_dir / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(["flock", str(lock), "sh", "-c", "echo locked; read x"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)


# ---------------------------------------------------------------- the first apply


def test_first_apply_of_the_example_writes_every_file(server: LocalServer) -> None:
    path = server.example()
    out = ok(server.cli("apply", str(path), "--auto-approve"))

    files = server.contents()
    for managed in MANAGED:
        assert managed in files, managed
        assert files[managed].decode().startswith("# managed by mailstate"), managed
    passwd = server.read(PASSWD)
    assert f"monsite:{{ARGON2ID}}$argon2id$v=19$m=65536,t=3,p=1${ADMIN_HASH}:5000:5000:" \
           "Domain administrator:/var/vmail/monsite.be/monsite:" in passwd
    assert f"monsite0001:{{ARGON2ID}}$argon2id$v=19$m=65536,t=3,p=1${INFO_HASH}:" in passwd
    assert "storage=3G" in passwd
    aliases = server.read(ALIASES).splitlines()
    for line in ("info@monsite.be monsite0001@monsite.be",
                 "contact@monsite.be monsite0001@monsite.be",
                 "information@monsite.be monsite0001@monsite.be",
                 "frederic@monsite.be frederic@gmail.com",
                 "abuse@monsite.be monsite@monsite.be",
                 "postmaster@monsite.be monsite@monsite.be",
                 "monsite0001@monsite.be monsite0001@monsite.be, monsite@gmail.com"):
        assert line in aliases, line
    assert any(a.startswith("info@monsite.com ") for a in aliases)  # the domain alias
    assert "monsite.be" in server.read("etc/postfix/mailstate/virtual_mailbox_domains")
    assert "monsite.com" in server.read("etc/postfix/mailstate/virtual_alias_domains")
    mailboxes = server.read("etc/postfix/mailstate/virtual_mailboxes")
    assert "monsite@monsite.be" in mailboxes and "monsite0001@monsite.be" in mailboxes
    sieve = server.read("etc/dovecot/mailstate/sieve/monsite0001.sieve")
    assert "vacation" in sieve and "Out of office" in sieve and "I am away until 5" in sieve
    assert "/etc/dovecot/mailstate/passwd" in server.read("etc/dovecot/conf.d/99-mailstate.conf")
    assert "--delay=900" in server.read("etc/default/postgrey")
    main_cf = server.read("etc/postfix/main.cf").splitlines()
    for setting in ("virtual_mailbox_maps = hash:/etc/postfix/mailstate/virtual_mailboxes",
                    "virtual_alias_maps = hash:/etc/postfix/mailstate/virtual_aliases",
                    "virtual_transport = lmtp:unix:private/dovecot-lmtp"):
        assert setting in main_cf, setting
    assert any(s.startswith("smtpd_recipient_restrictions = ") and
               "check_policy_service inet:127.0.0.1:10023" in s for s in main_cf)

    # the manifest records what was written; the welcome mails wait in the outbox
    manifest = json.loads(files["var/lib/mailstate/manifest.json"])["files"]
    assert manifest == {"/" + p: hashlib.sha256(files[p]).hexdigest() for p in MANAGED}
    outbox = sorted(p for p in files if p.startswith("var/lib/mailstate/outbox/")
                    and p.endswith(".eml"))
    assert outbox == ["var/lib/mailstate/outbox/monsite.eml",
                      "var/lib/mailstate/outbox/monsite0001.eml"]
    assert b"monsite0001@monsite.be" in files[outbox[1]]
    assert (server.root / "var/vmail").is_dir()
    assert not [p for p in files if "/stage" in p], "the stage (password hashes) is left behind"

    # the server programs were skipped, and the output says so
    for what in ("postmap check", "doveconf check", "sievec check", "reload postfix",
                 "reload dovecot", "reload postgrey", "sendmail of monsite0001.eml",
                 "mailbox probe (doveadm mailbox status)"):
        assert f"skipped on the local target: {what}" in out, what
    assert "Apply complete. 15 to add" in out
    assert "$argon2id$" not in out


def test_a_plan_changes_nothing(server: LocalServer) -> None:
    path = server.example()
    out = ok(server.cli("plan", str(path), "--detailed-exitcode"), 2)
    assert "+ mailbox monsite0001" in out
    assert server.contents() == {}


# ---------------------------------------------------------------- idempotency


def test_after_apply_the_plan_is_empty_and_a_second_apply_writes_nothing(
        server: LocalServer) -> None:
    path = server.example()
    ok(server.cli("apply", str(path), "--auto-approve"))
    before = server.tree()
    generations = server.generations()
    assert len(generations) == 1

    out = ok(server.cli("plan", str(path), "--detailed-exitcode"), 0)
    assert "no changes" in out and "No changes. The servers match the domain files." in out

    out = ok(server.cli("apply", str(path), "--auto-approve"))
    assert "No changes." in out
    for word in ("reload", "skipped", "generation", "Apply complete"):
        assert word not in out, word
    assert server.tree() == before  # same content, same inodes, same mtimes
    assert server.generations() == generations


def test_a_second_apply_makes_no_round_trip_beyond_the_read(server: LocalServer) -> None:
    path = server.example()
    server.apply(path)
    desired, [prep] = server.prepare(path)
    assert prep.transport.round_trips == 1
    assert not prep.plan.has_changes and prep.plan.reloads == []
    applied = apply_server(prep, desired.servers[prep.plan.server])
    assert not applied.changed
    assert prep.transport.round_trips == 1


# ---------------------------------------------------------------- changes as objects


def test_detailed_exitcode(server: LocalServer) -> None:
    path = server.example()
    ok(server.cli("plan", str(path), "--detailed-exitcode"), 2)
    ok(server.cli("apply", str(path), "--auto-approve"))
    ok(server.cli("plan", str(path), "--detailed-exitcode"), 0)
    path.write_text(example("quota: 3G", "quota: 2G"))
    ok(server.cli("plan", str(path), "--detailed-exitcode"), 2)
    path.write_text(example('password: "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$N4Y',
                            'password: "secret"\n    # "'))
    out = ok(server.cli("plan", str(path), "--detailed-exitcode"), 1)
    assert "plain-text password" in out
    ok(server.cli("apply", str(path), "--auto-approve"), 1)
    ok(server.cli("plan", str(path)), 1)


def test_password_change_shows_no_hash_anywhere(server: LocalServer, tmp_path: Path) -> None:
    path = server.example()
    server.apply(path)
    path.write_text(example(ADMIN_HASH, INFO_HASH))
    saved = tmp_path / "plan.json"
    outputs = [ok(server.cli("plan", str(path), "--format", fmt), 0)
               for fmt in ("text", "markdown", "json")]
    outputs.append(ok(server.cli("plan", str(path), "--out", str(saved))))
    outputs.append(saved.read_text())
    outputs.append(ok(server.cli("apply", str(path), "--auto-approve")))
    for out in outputs:
        for secret in (ADMIN_HASH, INFO_HASH, "$argon2id$", "N4YQIqT0fi9lTMmZ8x6DcA",
                       "y8AONqAfifKKZVjyxj9nHQu2IzUJDKM9StmxylEpdic"):
            assert secret not in out, secret
    assert "password: (hash) -> (new hash)" in outputs[0]
    assert "password: `(hash)` → `(new hash)`" in outputs[1]
    assert f"monsite:{{ARGON2ID}}$argon2id$v=19$m=65536,t=3,p=1${INFO_HASH}:" in \
        server.read(PASSWD)


def test_a_removed_mailbox_is_disabled_and_its_mail_kept(server: LocalServer) -> None:
    path = server.example()
    server.apply(path)
    mail = server.root / "var/vmail/monsite.be/monsite0001/Maildir/cur/1.eml"
    mail.parent.mkdir(parents=True)
    mail.write_bytes(b"Subject: kept\n\nhello\n")
    path.write_text(without(example(), "  # Manual §6: the first mailbox", "# Manual §10"))

    out = ok(server.cli("plan", str(path), "--detailed-exitcode"), 2)
    assert "- mailbox monsite0001: disabled: mail to it is refused, its mail stays on disk" in out
    ok(server.cli("apply", str(path), "--auto-approve"))
    assert mail.read_bytes() == b"Subject: kept\n\nhello\n"
    assert "monsite0001" not in server.read(PASSWD)
    assert "monsite0001" not in server.read("etc/postfix/mailstate/virtual_mailboxes")
    assert not (server.root / "etc/dovecot/mailstate/sieve/monsite0001.sieve").exists()
    assert "monsite0001" not in server.read("var/lib/mailstate/manifest.json")
    ok(server.cli("plan", str(path), "--detailed-exitcode"), 0)


def test_vacation_on_and_off(server: LocalServer) -> None:
    no_vacation = without(example(), "    # Manual §9", "    welcome: true")
    path = server.domain(no_vacation)
    server.apply(path)
    assert not (server.root / "etc/dovecot/mailstate/sieve/monsite0001.sieve").exists()
    path.write_text(example())
    out = ok(server.cli("plan", str(path)))
    assert "~ mailbox monsite0001\n        vacation: off -> on\n" in out
    ok(server.cli("apply", str(path), "--auto-approve"))
    assert "Out of office" in server.read("etc/dovecot/mailstate/sieve/monsite0001.sieve")
    path.write_text(no_vacation)
    out = ok(server.cli("plan", str(path)))
    assert "~ mailbox monsite0001\n        vacation: on -> off\n" in out
    ok(server.cli("apply", str(path), "--auto-approve"))
    assert not (server.root / "etc/dovecot/mailstate/sieve/monsite0001.sieve").exists()
    ok(server.cli("plan", str(path), "--detailed-exitcode"), 0)


# ---------------------------------------------------------------- state, not text


def test_a_reordered_live_file_is_no_state_change(server: LocalServer) -> None:
    path = server.example()
    server.apply(path)
    header, *body = server.read(ALIASES).splitlines(keepends=True)
    assert len(body) > 10
    shuffled = [header, *body[1::2], *reversed(body[::2])]
    assert shuffled[1:] != body
    (server.root / ALIASES).write_text("".join(shuffled))
    update_manifest(server, ALIASES)

    _, [prep] = server.prepare(path)
    assert prep.plan.changes == [] and prep.plan.drift == [] and prep.plan.warnings == []
    assert prep.plan.files == [FileAction("/" + ALIASES, "write", "postfix", "changed")]
    out = ok(server.cli("plan", str(path)))
    assert "Plan: 0 to add, 0 to change, 0 to remove. (Only file layout differs; the state " \
           "is the same.)" in out
    assert "drift" not in out


# ---------------------------------------------------------------- drift


def test_drift_is_shown_and_apply_refuses_without_force(server: LocalServer) -> None:
    path = server.example()
    server.apply(path)
    with (server.root / ALIASES).open("a") as f:
        f.write("sales@monsite.be monsite@monsite.be\n")
    hand_edited = server.read(ALIASES)
    path.write_text(example("quota: 3G", "quota: 2G"))

    out = ok(server.cli("plan", str(path), "--detailed-exitcode"), 2)
    assert f"! drift: /{ALIASES} was edited by hand since the last apply" in out
    assert "- alias sales@monsite.be" in out and "quota: 3G -> 2G" in out
    md = ok(server.cli("plan", str(path), "--format", "markdown"))
    assert f"> :warning: maximusconfessor: drift: `/{ALIASES}` was edited by hand since the " \
        "last apply  \n" in md
    assert json.loads(server.cli("plan", str(path), "--format", "json").stdout)[
        "servers"][0]["drift"] == ["/" + ALIASES]

    before = server.tree()
    out = ok(server.cli("apply", str(path), "--auto-approve"), 1)
    assert f"/{ALIASES} changed by hand since the last apply" in out and "--force" in out
    assert server.tree() == before

    out = ok(server.cli("apply", str(path), "--auto-approve", "--force"))
    assert "Apply complete." in out
    assert "sales@monsite.be" not in server.read(ALIASES)
    ok(server.cli("plan", str(path), "--detailed-exitcode"), 0)
    # the hand edit is not lost: the generation kept it
    newest = server.state_dir / "generations" / server.generations()[-1]
    assert (newest / "files" / ALIASES).read_text() == hand_edited


# ---------------------------------------------------------------- saved plans, stale plans


def _saved_quota_plan(server: LocalServer, tmp_path: Path) -> tuple[Path, Path]:
    """The example applied, its quota then changed in the file, and that plan saved."""
    path = server.example()
    server.apply(path)
    path.write_text(example("quota: 3G", "quota: 2G"))
    saved = tmp_path / "plan.json"
    ok(server.cli("plan", str(path), "--out", str(saved)))
    return path, saved


def test_a_saved_plan_is_applied(server: LocalServer, tmp_path: Path) -> None:
    path = server.example()
    saved = tmp_path / "plan.json"
    out = ok(server.cli("plan", str(path), "--out", str(saved)))
    assert f"apply it with `mailstate apply --plan {saved}`" in out
    assert json.loads(saved.read_text())["summary"] == {"add": 15, "change": 2, "remove": 0}
    assert server.contents() == {}
    out = ok(server.cli("apply", str(path), "--plan", str(saved)))  # reviewed: no prompt
    assert "Apply complete." in out
    ok(server.cli("plan", str(path), "--detailed-exitcode"), 0)


def test_a_saved_plan_is_stale_when_the_server_changed(server: LocalServer,
                                                        tmp_path: Path) -> None:
    path, saved = _saved_quota_plan(server, tmp_path)

    other = server.domain(example("Domain administrator", "Admin"), "other.yaml")
    server.apply(other)  # someone else applied in between
    before = live(server)
    out = ok(server.cli("apply", str(path), "--plan", str(saved), "--auto-approve"), 1)
    assert "the saved plan is stale: server 'maximusconfessor' changed since it was made" in out
    assert live(server) == before


def test_a_saved_plan_is_stale_after_a_hand_edit(server: LocalServer, tmp_path: Path) -> None:
    path, saved = _saved_quota_plan(server, tmp_path)
    main_cf = server.root / "etc/postfix/main.cf"
    main_cf.write_text(main_cf.read_text().replace("virtual_transport = lmtp:", "virtual_"
                                                   "transport = lmtp:inet:localhost:24 #"))
    before = live(server)
    out = ok(server.cli("apply", str(path), "--plan", str(saved), "--force"), 1)
    assert "stale" in out
    assert live(server) == before


def test_a_saved_plan_is_stale_when_the_domain_files_changed(server: LocalServer,
                                                             tmp_path: Path) -> None:
    path, saved = _saved_quota_plan(server, tmp_path)
    path.write_text(example("quota: 3G", "quota: 1G"))
    before = live(server)
    out = ok(server.cli("apply", str(path), "--plan", str(saved), "--auto-approve"), 1)
    assert "the saved plan is stale: the domain files for 'maximusconfessor' changed" in out
    assert live(server) == before


def test_a_damaged_saved_plan_is_refused(server: LocalServer, tmp_path: Path) -> None:
    path = server.example()
    saved = tmp_path / "plan.json"
    for text in ("not json", '{"format": 2}', '{"format": 1}', '{"format": 1, "servers": [{}]}',
                 "[]"):
        saved.write_text(text)
        out = ok(server.cli("apply", str(path), "--plan", str(saved)), 1)
        assert "error:" in out and "Traceback" not in out
    assert server.contents() == {}


def test_compare_and_swap_refuses_a_file_changed_after_the_read(server: LocalServer) -> None:
    path = server.example()
    server.apply(path)
    path.write_text(example("quota: 3G", "quota: 2G"))
    desired, [old] = server.prepare(path)  # read now, activated later
    server.apply(server.domain(example("Domain administrator", "Admin"), "other.yaml"))
    before, generations = live(server), server.generations()

    with pytest.raises(TransportError, match=r"(?s)the plan is stale.*stale plan: /etc/dovecot/"
                       r"mailstate/passwd changed since the plan was made; plan again$"):
        apply_server(old, desired.servers["maximusconfessor"])
    assert live(server) == before
    assert server.generations() == generations


def test_compare_and_swap_refuses_a_file_that_appeared_after_the_read(
        server: LocalServer) -> None:
    path = server.example()
    desired, [old] = server.prepare(path)
    (server.root / ALIASES).parent.mkdir(parents=True)
    (server.root / ALIASES).write_text("someone@monsite.be else@example.org\n")
    before = live(server)
    with pytest.raises(TransportError, match=f"/{ALIASES} appeared since the plan was made"):
        apply_server(old, desired.servers["maximusconfessor"])
    assert live(server) == before
    assert server.generations() == []


# ---------------------------------------------------------------- approval and the lock


def test_apply_without_a_terminal_or_approval_refuses(server: LocalServer) -> None:
    path = server.example()
    out = ok(server.cli("apply", str(path)), 1)
    assert "no terminal to confirm on" in out and "--auto-approve" in out
    assert server.contents() == {}


def test_apply_fails_clearly_while_another_holds_the_lock(server: LocalServer) -> None:
    path = server.example()
    server.apply(path)
    path.write_text(example("quota: 3G", "quota: 2G"))
    before, generations = live(server), server.generations()
    with lock_held(server):
        out = ok(server.cli("apply", str(path), "--auto-approve", "--lock-timeout", "0.5"), 1)
        assert "another apply holds the lock" in out
        assert "another mailstate apply is running on this server " \
               "(lock /var/lib/mailstate/lock, held by " in out
        assert live(server) == before
        assert server.generations() == generations
    ok(server.cli("apply", str(path), "--auto-approve"))
    assert "storage=2G" in server.read(PASSWD)


# ---------------------------------------------------------------- round trips


def generated_repo(root: Path, server_root: Path, mailboxes: int) -> Path:
    """A repository with one domain of `mailboxes` mailboxes on one local server."""
    hash_ = f"{{ARGON2ID}}$argon2id$v=19$m=65536,t=3,p=1${ADMIN_HASH}"
    lines = ["domain: big.example", "account: big", "domain_aliases: [big.example.net]",
             "aliases:", "  sales: [sales@elsewhere.example]", "mailboxes:"]
    for i in range(mailboxes):
        login = "big" if i == 0 else f"big{i:04d}"
        lines += [f"  {login}:", f"    name: User {i}", f'    password: "{hash_}"',
                  "    quota: 1G", f"    addresses: [user{i}]", f"    welcome: {i == 0}"]
        if i % 10 == 1:
            lines += ["    forward:", f"      to: [user{i}@elsewhere.example]"]
        if i % 20 == 2:
            lines += ["    vacation:", "      subject: Away", "      message: I am away."]
    (root / "domains").mkdir(parents=True)
    (root / "domains" / "big.example.yaml").write_text("\n".join(lines) + "\n")
    (root / "mailstate.yaml").write_text(
        "plans:\n  big: {mailboxes: null, mail_quota: null, domains: 1}\n"
        f"servers:\n  mx:\n    target: local:{server_root}\n"
        "accounts:\n  big: {plan: big, domains: [big.example, big.example.net]}\n")
    return root


@pytest.mark.parametrize("mailboxes", [1, 10, 1000])
def test_round_trips_do_not_grow_with_mailboxes(server: LocalServer, mailboxes: int) -> None:
    repo = generated_repo(server.work / "provider", server.root, mailboxes)
    desired, [prep] = server.prepare(repo)
    assert len(desired.servers["mx"].mailboxes()) == mailboxes
    assert prep.transport.round_trips == 1  # plan: one read
    applied = apply_server(prep, desired.servers["mx"])
    assert applied.changed
    assert prep.transport.round_trips == 2  # apply: read, upload and activate
    desired, [again] = server.prepare(repo)
    assert not again.plan.has_changes and again.transport.round_trips == 1
    assert len(server.read(PASSWD).splitlines()) == mailboxes + 1


def test_the_cli_makes_one_round_trip_to_plan_and_two_to_apply(
        server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = generated_repo(server.work / "provider", server.root, 10)
    calls: list[str] = []
    real_run = LocalTransport.run

    def counting(self: LocalTransport, script: str, args: list[str], stdin: bytes = b"",
            **kw):  # type: ignore[no-untyped-def]
        calls.append(script.splitlines()[0])
        return real_run(self, script, args, stdin, **kw)

    monkeypatch.setattr(LocalTransport, "run", counting)
    ok(server.cli("plan", str(repo), target=False), 0)
    assert len(calls) == 1
    calls.clear()
    ok(server.cli("apply", str(repo), "--auto-approve", target=False))
    assert len(calls) == 2
    calls.clear()
    ok(server.cli("apply", str(repo), "--auto-approve", target=False))
    assert len(calls) == 1  # nothing to do: the read only


# ---------------------------------------------------------------- generations


def test_each_apply_keeps_the_previous_files_as_a_generation(server: LocalServer) -> None:
    path = server.example()
    server.apply(path)
    [first] = server.generations()
    created = (server.state_dir / "generations" / first / "created").read_text().split()
    assert sorted(created) == sorted("/" + p for p in MANAGED)
    v1 = server.contents()

    path.write_text(example("quota: 3G", "quota: 2G"))
    server.apply(path)
    first_again, second = server.generations()
    assert first_again == first and second > first
    kept = server.state_dir / "generations" / second
    assert (kept / "files" / PASSWD).read_bytes() == v1[PASSWD]
    assert (kept / "manifest.json").read_bytes() == v1["var/lib/mailstate/manifest.json"]
    assert not (kept / "files" / ALIASES).exists()  # unchanged files are not copied
    assert (kept / "created").read_text() == ""

    # a third apply the same day: the two newest are kept, the older one of the day goes
    path.write_text(example("quota: 3G", "quota: 1G"))
    server.apply(path)
    second_again, third = server.generations()
    assert second_again == second
    kept = server.state_dir / "generations" / third
    assert b"storage=2G" in (kept / "files" / PASSWD).read_bytes()


def test_apply_prunes_generations_by_the_retention_policy(server: LocalServer) -> None:
    path = server.example()
    old = [f"202001{day:02d}T120000000000Z" for day in range(1, 32)] + \
          [f"202002{day:02d}T120000000000Z" for day in range(1, 10)]
    for gen in old:
        (server.state_dir / "generations" / gen / "files").mkdir(parents=True)
    server.apply(path)
    [new] = set(server.generations()) - set(old)
    assert set(server.generations()) == keep([*old, new])
    assert sorted(server.generations()) == [
        "20200119T120000000000Z", "20200126T120000000000Z",  # weekly
        "20200202T120000000000Z", "20200203T120000000000Z",
        *(f"202002{day:02d}T120000000000Z" for day in range(4, 10)),  # daily
        new]


# ---------------------------------------------------------------- several servers


def two_server_repo(server: LocalServer) -> Path:
    repo = server.work / "provider"
    (repo / "domains").mkdir(parents=True)
    (repo / "mailstate.yaml").write_text(
        "servers:\n"
        f"  mx1: {{target: 'local:{server.root}/mx1'}}\n"
        f"  mx2: {{target: 'local:{server.root}/mx2'}}\n"
        "accounts:\n  monsite: {plan: recommended, domains: [monsite.be, monsite.com]}\n"
        "  bakker: {plan: light, domains: [bakker.be]}\n")
    text = example().replace("plan: recommended", "").replace("maximusconfessor", "mx1")
    (repo / "domains" / "monsite.be.yaml").write_text(text)
    (repo / "domains" / "bakker.be.yaml").write_text(
        "domain: bakker.be\naccount: bakker\nserver: mx2\nmailboxes:\n  bakker:\n"
        f'    name: Bakker\n    password: "{{ARGON2ID}}$argon2id$v=19$m=65536,t=3,p=1$'
        f'{ADMIN_HASH}"\n')
    return repo


def test_several_servers_one_round_trip_each_to_plan(
        server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = two_server_repo(server)
    roots: list[str] = []
    real_run = LocalTransport.run

    def counting(self: LocalTransport, script: str, args: list[str], stdin: bytes = b"",
            **kw):  # type: ignore[no-untyped-def]
        roots.append(self.root.name)
        return real_run(self, script, args, stdin, **kw)

    monkeypatch.setattr(LocalTransport, "run", counting)
    md = ok(server.cli("plan", str(repo), "--format", "markdown", "--detailed-exitcode",
                       target=False), 2)
    assert sorted(roots) == ["mx1", "mx2"]
    assert md.count("| | what | details |") >= 2
    assert "\n| `mx1` | " in md and "\n| `mx2` | " in md
    assert " on mx1: " in md and " on mx2: " in md
    roots.clear()
    ok(server.cli("apply", str(repo), "--auto-approve", target=False))
    assert sorted(roots) == ["mx1"] * 2 + ["mx2"] * 2
    assert "bakker:" in (server.root / "mx2" / PASSWD).read_text()
    assert "bakker:" not in (server.root / "mx1" / PASSWD).read_text()

    # a change on one server: the other is read, and nothing more
    domain = repo / "domains" / "bakker.be.yaml"
    domain.write_text(domain.read_text() + "    quota: 1G\n")
    roots.clear()
    out = ok(server.cli("apply", str(repo), "--auto-approve", target=False))
    assert sorted(roots) == ["mx1"] + ["mx2"] * 2
    assert "Server mx1" in out and "mx2: generation" in out and "mx1: generation" not in out
    ok(server.cli("plan", str(repo), "--detailed-exitcode", target=False), 0)
    out = ok(server.cli("plan", str(repo), "--target", server.target, target=False), 1)
    assert "a --target without NAME= is for one server, but this run has 2: mx1, mx2" in out
    # NAME=TARGET points each server elsewhere; --server narrows the run
    other = server.root / "elsewhere"
    out = ok(server.cli("plan", str(repo), "--target", f"mx1=local:{other}", "--server", "mx1",
                        "--detailed-exitcode", target=False), 2)
    assert f"Server mx1 (local:{other})" in out and "Server mx2" not in out


def test_a_plan_that_cannot_be_saved_is_an_error(server: LocalServer, tmp_path: Path) -> None:
    path = server.example()
    out = ok(server.cli("plan", str(path), "--out", str(tmp_path / "missing" / "plan.json"),
                        "--detailed-exitcode"), 1)
    assert "error: cannot save the plan to" in out and "Traceback" not in out
