"""render(): golden cases, format rules, and the real tools accepting what it writes."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import functools
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailstate.files.render import render, render_welcome, welcome_recipient
from mailstate.model.layout import MANAGED_HEADER, Facts, Layout, Rendered
from mailstate.model.state import Greylisting, ServerState, Vacation
from mailstate.model.values import check_name
from mailstate.server.read import parse_protocols

from .samples import mailbox, one_domain
from .strategies import server_states
from .tools import dovecot_copy, need, run

CASES = Path(__file__).resolve().parent.parent / "cases" / "render"
REGEN = os.environ.get("MAILSTATE_REGEN") == "1"  # rewrite expectations after a reviewed change
LAYOUT = Layout()
HASH = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHQ$aGFzaA"
MD5 = "{MD5-CRYPT}$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0"


def load_case(case: Path) -> tuple[ServerState, Facts]:
    state = ServerState.model_validate_json((case / "state.json").read_text())
    facts_file = case / "facts.json"
    facts = Facts(**json.loads(facts_file.read_text())) if facts_file.exists() else Facts()
    return state, facts


def case_dirs() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if (p / "state.json").exists())


@pytest.mark.parametrize("case", case_dirs(), ids=lambda p: p.name)
def test_render_case(case: Path) -> None:
    """Each case directory: state.json (+ facts.json) -> files/ + files.json + postconf.json."""
    state, facts = load_case(case)
    rendered = render(state, LAYOUT, facts)
    meta = {f.path: {"mode": oct(f.mode), "group": f.group, "service": f.service,
                     "postmap": f.postmap} for f in rendered.files}
    if REGEN:
        shutil.rmtree(case / "files", ignore_errors=True)
        for f in rendered.files:
            target = case / "files" / f.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.content)
        (case / "files.json").write_text(json.dumps(meta, indent=2) + "\n")
        (case / "postconf.json").write_text(json.dumps(rendered.postfix_settings, indent=2) + "\n")
    expected_paths = sorted("/" + str(p.relative_to(case / "files"))
                            for p in (case / "files").rglob("*") if p.is_file())
    assert sorted(meta) == expected_paths
    for f in rendered.files:
        assert f.content == (case / "files" / f.path.lstrip("/")).read_bytes(), f.path
    assert meta == json.loads((case / "files.json").read_text())
    assert rendered.postfix_settings == json.loads((case / "postconf.json").read_text())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state=server_states())
def test_every_file_starts_with_the_header(state: ServerState) -> None:
    for f in render(state, LAYOUT, Facts()).files:
        first = f.content.split(b"\n", 1)[0].decode()
        assert first.startswith("# ") and MANAGED_HEADER in first, f.path
        assert f.content.endswith(b"\n")


_box = functools.partial(mailbox, password=HASH)
_state = one_domain


def _file(rendered: Rendered, name: str) -> str:
    return next(f.content.decode() for f in rendered.files if f.path.endswith(name))


@pytest.mark.parametrize("bad", [
    _state(_box(name="Jo: the boss")),  # ':' would split the passwd-file line
    _state(_box(name="Jo\nroot::0:0")),
    _state(_box(password="{PLAIN}a b")),  # whitespace in a hash would be an extra field
    _state(_box(login="../etc")),
    _state(_box(quota=1000)),  # not whole KiB
    _state(_box(addresses=("jo@x.be",))),  # the primary address twice
    _state(_box(addresses=("info@y.be",))),  # not at the mailbox's domain
    _state(_box(forward=("a b@y.be",), keep_copy=False)),
    _state(_box(vacation=Vacation(subject="s", message="nul\x00"))),
    _state(_box(vacation=Vacation(subject="s", message="cr\r\n"))),
    _state(_box(), aliases={"jo@x.be": ("a@y.be",)}),  # alias over a mailbox
    _state(_box(), aliases={"x@x.be": ("a@y.be, b@y.be",)}),
    ServerState(greylisting=Greylisting(whitelist_clients=("bad host",))),
])
def test_unsafe_data_is_refused_not_escaped(bad: ServerState) -> None:
    with pytest.raises(ValueError):
        render(bad, LAYOUT, Facts())


def test_forwarding_moves_to_sieve_only_with_vacation_and_no_copy() -> None:
    v = Vacation(subject="Away", message="Back soon")
    cases = {
        (False, True): ("jo@x.be jo@x.be, a@y.be", False),
        (False, False): ("jo@x.be a@y.be", False),
        (True, True): ("jo@x.be jo@x.be, a@y.be", False),
        (True, False): ("jo@x.be jo@x.be", True),
    }
    for (vacation, keep), (alias_line, redirect) in cases.items():
        box = _box(forward=("a@y.be",), keep_copy=keep, vacation=v if vacation else None)
        rendered = render(_state(box), LAYOUT, Facts())
        assert alias_line + "\n" in _file(rendered, "/virtual_aliases")
        sieve = [f for f in rendered.files if f.path.endswith(".sieve")]
        assert bool(sieve) == vacation
        if sieve:
            assert ('redirect "a@y.be";' in sieve[0].content.decode()) == redirect


def test_domain_aliases_are_expanded_per_address() -> None:
    box = _box(addresses=("info@x.be",), primary_enabled=False)
    state = _state(box, domain_aliases=("x.com",), aliases={"sales@x.be": ("a@y.be",)},
                   catch_all=("jo@x.be",))
    rendered = render(state, LAYOUT, Facts(db_type="lmdb"))
    aliases = _file(rendered, "/virtual_aliases").splitlines()[1:]
    assert aliases == [
        "@x.be jo@x.be", "info@x.be jo@x.be", "jo@x.be jo@x.be", "sales@x.be a@y.be",
        "@x.com jo@x.be", "info@x.com info@x.be", "jo@x.com jo@x.be", "sales@x.com sales@x.be",
    ]
    assert _file(rendered, "/recipient_access").splitlines()[1:] == [
        "jo@x.be REJECT primary address disabled", "jo@x.com REJECT primary address disabled"]
    assert rendered.postfix_settings["virtual_alias_maps"] == (
        "lmdb:/etc/postfix/mailstate/virtual_aliases")


def test_quota_units_are_powers_of_1024() -> None:
    for quota, text in [(3 * 1024**3, "3G"), (1536 * 1024**2, "1536M"), (2 * 1024**4, "2T"),
                        (1024**2, "1M"), (0, "0")]:
        passwd = _file(render(_state(_box(quota=quota)), LAYOUT, Facts()), "/passwd")
        assert f"userdb_quota_rule=*:storage={text}\n" in passwd
    passwd = _file(render(_state(_box(quota=0)), LAYOUT, Facts(dovecot_version="2.4.0")),
                   "/passwd")
    assert "userdb_quota_storage_size=unlimited\n" in passwd


def test_greylisting_switch_only_drops_the_policy_hook() -> None:
    on = render(ServerState(), LAYOUT, Facts())
    off = render(ServerState(greylisting=Greylisting(enabled=False)), LAYOUT, Facts())
    hook = "check_policy_service inet:127.0.0.1:10023"
    assert on.postfix_settings["smtpd_recipient_restrictions"].endswith(hook)
    assert hook not in off.postfix_settings["smtpd_recipient_restrictions"]
    assert [f.path for f in on.files] == [f.path for f in off.files]


def test_welcome_mail() -> None:
    box = _box(name="Zoë Ünal", addresses=("info@x.be",), quota=3 * 1024**3)
    raw = render_welcome(box, now=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    assert b"\r\n" in raw and all(b < 128 for b in raw.split(b"\r\n\r\n", 1)[0])
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["From"] == "Postmaster <postmaster@x.be>"
    assert msg["To"].addresses[0].display_name == "Zoë Ünal"
    assert msg["To"].addresses[0].addr_spec == "jo@x.be"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"].endswith("@x.be>")
    assert msg["Date"].datetime == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    body = msg.get_content()
    for text in ("jo", "jo@x.be, info@x.be", "3 GiB", "mail.x.be", "IMAP", "143 (STARTTLS)"):
        assert text in body
    assert "POP3" not in body  # not reported by the server: not named


@pytest.mark.parametrize(
    ("protocols", "named", "unnamed"),
    [
        (("imap", "lmtp", "pop3"), ["any IMAP or POP3 client", "143 (STAR", "110 (STAR"], []),
        (("lmtp", "pop3"), ["any POP3 client", "110 (STARTTLS)"], ["IMAP", "143 (STARTTLS)"]),
        (("lmtp",), ["any e-mail client"], ["IMAP", "POP3"]),
    ],
)
def test_welcome_mail_names_what_the_server_offers(
    protocols: tuple[str, ...], named: list[str], unnamed: list[str]
) -> None:
    body = email.message_from_bytes(
        render_welcome(_box(), protocols=protocols), policy=email.policy.default
    ).get_content()
    assert all(text in body for text in named)
    assert not any(text in body for text in unnamed)


HOSTILE_NAMES = [
    "Customer Service Department of Example, evil@attacker.test, (see the attached",
    "Support Team of a Company With a Long Name \"x\", <evil@attacker.test>, and more text",
    "a" * 50 + ", evil@attacker.test; Bcc= evil@attacker.test",
    "=?utf-8?q?evil=40attacker=2Etest?= , other@attacker.test",
    "Zoë Ünal, évil@attacker.test, (très longue description du service clientèle)",
    "\\\" evil@attacker.test \\\"" + " x" * 35,
    "(comment) <evil@attacker.test>,",
    "x" * 100,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_welcome_mail_with_a_hostile_name_has_one_recipient(name: str) -> None:
    """Every header parses, the only recipient is the mailbox (with its name intact), and no
    header line is longer than SMTP allows."""
    check_name(name)  # a name a domain file may hold
    raw = render_welcome(_box(name=name), now=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert sorted(msg.keys()) == sorted(["From", "To", "Subject", "Date", "Message-ID",
                                         "Auto-Submitted", "Content-Type",
                                         "Content-Transfer-Encoding", "MIME-Version"])
    for key in msg:
        assert not msg[key].defects, (key, msg[key].defects)
    assert [a.addr_spec for a in msg["To"].addresses] == ["jo@x.be"]
    if "=?" not in name:  # readers decode what looks like an encoded word, even in quotes
        assert msg["To"].addresses[0].display_name == name
    assert [a.addr_spec for a in msg["From"].addresses] == ["postmaster@x.be"]
    assert welcome_recipient(_box(name=name)) == "jo@x.be"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
               min_size=1, max_size=100))
def test_welcome_mail_never_names_another_recipient(name: str) -> None:
    try:
        check_name(name)
    except ValueError:
        return
    raw = render_welcome(_box(name=name))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert [a.addr_spec for a in msg["To"].addresses] == ["jo@x.be"]


def test_dovecot24_fragment_uses_only_the_new_syntax() -> None:
    """Checked against the 2.4 golden case; here the 2.3 spellings that 2.4 rejects."""
    state, facts = load_case(CASES / "monsite-dovecot24")
    conf = render(state, LAYOUT, facts).by_path()[LAYOUT.dovecot_fragment].content.decode()
    for old in ("$mail_plugins", "plugin {", "mail_location", "%L", "%n", "\n  args =",
                "quota_rule", "args = scheme"):
        assert old not in conf
    for new in ("passdb passwd-file {", "passwd_file_path = /etc/dovecot/mailstate/passwd",
                "mail_driver = maildir", "sieve_script personal {", "vacation-seconds = yes",
                # what Debian 13's stock conf.d needs overridden (found by real mail):
                "mail_inbox_path = .", "sieve_user_log_path = ~/", "protocol lmtp {\n"
                "  auth_username_format"):
        assert new in conf
    # a global auth_username_format loses against stock 20-lmtp.conf's protocol block
    assert "\nauth_username_format" not in conf
    assert "active_path =" not in conf  # the userdb's script path is a file, not a storage



@pytest.mark.parametrize(("version", "hashes", "allowed"), [
    ("2.4.1", [MD5], True), ("2.4.1", [HASH], False), ("2.3.19", [MD5], False)])
def test_weak_schemes_are_allowed_on_24_only_while_a_hash_needs_it(
        version: str, hashes: list[str], allowed: bool) -> None:
    """An MD5-CRYPT hash carried over from /etc/shadow: Dovecot 2.4 refuses it by default
    (2.3 logs a warning), and the user must keep logging in with the old password."""
    state = one_domain(*(mailbox(f"u{i}", password=h) for i, h in enumerate([HASH, *hashes])))
    rendered = render(state, LAYOUT, Facts(dovecot_version=version))
    conf = rendered.by_path()[LAYOUT.dovecot_fragment].content.decode()
    assert ("\nauth_allow_weak_schemes = yes\n" in conf) is allowed

# -- the real tools --------------------------------------------------------------------------

def all_case_renders() -> list[tuple[str, Rendered]]:
    out = []
    for case in case_dirs():
        state, facts = load_case(case)
        out.append((case.name, render(state, LAYOUT, facts)))
    return out


def test_doveconf_accepts_the_fragment_in_a_stock_config(tmp_path: Path) -> None:
    doveconf = need("doveconf")
    state, facts = load_case(CASES / "monsite")
    conf = dovecot_copy(tmp_path, render(state, LAYOUT, facts), LAYOUT)
    out = run(doveconf, "-c", str(conf), "-n").stdout
    assert "passwd-file" in out

    def value(name: str, *filters: str) -> str:
        return run(doveconf, "-c", str(conf), *filters, "-h", name).stdout.strip()

    assert value("mail_location") == "maildir:~/Maildir"
    # Logins keep their domain part (checked by the logins passdb); deliveries drop it.
    assert value("auth_username_format") == "%Lu"
    assert value("auth_username_format", "-f", "protocol=lmtp") == "%Ln"
    assert value("mail_plugins").split() == ["quota"]
    assert value("mail_plugins", "-f", "protocol=lmtp").split() == ["quota", "sieve"]
    assert value("lmtp_rcpt_check_quota") == "yes"
    assert value("plugin/quota") == "maildir:User quota"
    assert value("plugin/sieve_vacation_min_period") == "1s"
    assert value("plugin/sieve_max_redirects") == "32"


def sievec_config(tmp_path: Path) -> Path:
    state, facts = load_case(CASES / "monsite")
    return dovecot_copy(tmp_path, render(state, LAYOUT, facts), LAYOUT)


def test_sievec_compiles_every_case_script(tmp_path: Path) -> None:
    sievec = need("sievec")
    conf = sievec_config(tmp_path)
    scripts = [(n, f) for n, r in all_case_renders() for f in r.files
               if f.path.endswith(".sieve")]
    assert scripts
    for name, f in scripts:
        src = tmp_path / f"{name}-{Path(f.path).name}"
        src.write_bytes(f.content)
        proc = run(sievec, "-c", str(conf), str(src), str(src.with_suffix(".svbin")))
        assert "error" not in proc.stderr.lower(), proc.stderr


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(state=server_states())
def test_sievec_compiles_generated_scripts(tmp_path: Path, state: ServerState) -> None:
    """Arbitrary vacation texts (quotes, backslashes, dots, unicode) stay valid Sieve."""
    sievec = need("sievec")
    conf = tmp_path / "dovecot" / "dovecot.conf"
    if not conf.exists():
        conf = sievec_config(tmp_path)
    for f in render(state, LAYOUT, Facts()).files:
        if f.path.endswith(".sieve"):
            src = tmp_path / "s.sieve"
            src.write_bytes(f.content)
            run(sievec, "-c", str(conf), str(src), str(tmp_path / "s.svbin"))


MESSAGES = {
    "plain": "",
    "list": "List-Id: <news.example.org>\n",
    "unsubscribe": "List-Unsubscribe: <mailto:u@example.org>\n",
    "bulk": "Precedence: Bulk\n",
    "auto": "Auto-Submitted: auto-replied\n",
    "auto-no": "Auto-Submitted: no\n",
}


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_sieve_test_shows_vacation_and_redirects(tmp_path: Path, kind: str) -> None:
    """Run the script on sample messages: reply only to personal mail; always forward."""
    sieve_test = need("sieve-test")
    conf = sievec_config(tmp_path)
    box = _box(addresses=("info@x.be",), forward=("out@y.be",), keep_copy=False,
               vacation=Vacation(subject="Away", message="Back soon", sender="info@x.be"))
    script = next(f for f in render(_state(box, domain_aliases=("x.com",)), LAYOUT,
                                    Facts()).files if f.path.endswith(".sieve"))
    uid = 5000 if os.getuid() == 0 else os.getuid()  # root may not be the mail user
    with tempfile.TemporaryDirectory(prefix="mailstate-sieve-") as tmp:
        work = Path(tmp)  # outside pytest's private (0700) tmp tree: uid must reach it
        work.chmod(0o777)
        (work / "s.sieve").write_bytes(script.content)
        (work / "m.eml").write_text(f"From: someone@example.net\nTo: info@x.com\n"
                                    f"{MESSAGES[kind]}Subject: hello\n\nhi\n")
        for p in work.iterdir():
            p.chmod(0o644)
        out = run(sieve_test, "-c", str(conf), "-o", f"mail_uid={uid}", "-o", f"mail_gid={uid}",
                  "-o", f"first_valid_uid={uid}", "-o", f"first_valid_gid={uid}",
                  "-o", f"mail_location=maildir:{work}/md", str(work / "s.sieve"),
                  str(work / "m.eml")).stdout
    assert "redirect message to: <out@y.be>" in out
    assert ("send vacation message" in out) == (kind in ("plain", "auto-no")), out
    assert re.search(r"Implicit keep:\s+\(none\)", out)


def test_postmap_builds_every_map(tmp_path: Path) -> None:
    postmap = need("postmap")
    cfg = tmp_path / "postfix"
    cfg.mkdir()
    (cfg / "main.cf").write_text("")
    state, facts = load_case(CASES / "monsite")
    for db_type in ("hash", "lmdb"):
        rendered = render(state, LAYOUT, facts.model_copy(update={"db_type": db_type}))
        maps = [f for f in rendered.files if f.postmap]
        assert len(maps) == 5
        for f in maps:
            src = cfg / f"{Path(f.path).name}"
            src.write_bytes(f.content)
            proc = run(postmap, "-c", str(cfg), f"{db_type}:{src}")
            assert proc.stderr == "", proc.stderr
        aliases = f"{db_type}:{cfg}/virtual_aliases"
        query = run(postmap, "-c", str(cfg), "-q", "info@monsite.com", aliases).stdout
        assert query.strip() == "info@monsite.be"
        query = run(postmap, "-c", str(cfg), "-q", "monsite0001@monsite.be", aliases).stdout
        assert query.strip() == "monsite0001@monsite.be"  # vacation + no copy: Sieve forwards
        assert run(postmap, "-c", str(cfg), "-q", "nobody@monsite.eu", aliases,
                   check=False).returncode == 1
        rejects = f"{db_type}:{cfg}/recipient_access"
        query = run(postmap, "-c", str(cfg), "-q", "monsite0001@monsite.eu", rejects).stdout
        assert query.startswith("REJECT")


def test_postgrey_files_read_as_postgrey_and_sh_read_them(tmp_path: Path) -> None:
    sh, perl = need("sh"), need("perl")
    state, facts = load_case(CASES / "monsite")
    by_path = render(state, LAYOUT, facts).by_path()
    default = tmp_path / "default"
    default.write_bytes(by_path[LAYOUT.postgrey_default].content)
    out = run(sh, "-c", f'. "{default}"; echo "$POSTGREY_OPTS|$MAILSTATE_GREYLISTING"').stdout
    assert out.strip() == ("--inet=127.0.0.1:10023 --delay=1200 --max-age=35 "
                           "--auto-whitelist-clients=5|yes")
    recipients = tmp_path / "whitelist_recipients"
    recipients.write_bytes(by_path[f"{LAYOUT.postgrey_dir}/whitelist_recipients.local"].content)
    # postgrey's own reading of a /regex/ entry: qr{$1}i against the recipient address
    check = (r'open F, $ARGV[0]; while(<F>){ s/#.*$//; s/^\s+//; s/\s+$//; next if $_ eq "";'
             r' /^\/(\S+)\/$/ or die "not a regex: $_"; push @r, qr{$1}i }'
             r' for $a (@ARGV[1..$#ARGV]) { print((grep { $a =~ $_ } @r) ? "1" : "0") }')
    out = run(perl, "-e", check, str(recipients), "a@bakkerij.be", "A@BAKKERIJ.BE",
              "a@sub.bakkerij.be", "a@bakkerij.be.evil", "a@monsite.be").stdout
    assert out == "11000"


@pytest.mark.parametrize(
    ("doveconf_output", "expected"),
    [
        (" imap lmtp pop3", ("imap", "lmtp", "pop3")),  # Dovecot 2.3
        ("imap = yes\nlmtp = yes\npop3 = yes", ("imap", "lmtp", "pop3")),  # 2.4
        ("imap = yes\npop3 = no\nlmtp = yes", ("imap", "lmtp")),
        ("", ()),
    ],
)
def test_protocols_fact_from_doveconf(doveconf_output: str, expected: tuple[str, ...]) -> None:
    assert parse_protocols(doveconf_output) == expected


def test_recipient_restrictions_refuse_unknown_and_full_before_greylisting() -> None:
    """Order is the behaviour: relay check, unknown recipients (550 at once), the quota-status
    policy (a full mailbox refused at RCPT), and only then postgrey."""
    settings = render(ServerState(), LAYOUT, Facts()).postfix_settings
    steps = settings["smtpd_recipient_restrictions"].split(", ")
    assert steps[steps.index("reject_unauth_destination"):] == [
        "reject_unauth_destination", "reject_unlisted_recipient",
        "check_policy_service unix:private/dovecot-quota-status",
        "check_policy_service inet:127.0.0.1:10023"]


@pytest.mark.parametrize("version", ["2.3.19", "2.4.1"])
def test_dovecot_serves_quota_status_where_postfix_asks(version: str) -> None:
    layout = Layout(quota_status_socket="private/qs")
    rendered = render(ServerState(), layout, Facts(dovecot_version=version))
    conf = _file(rendered, "99-mailstate.conf")
    assert "unix_listener /var/spool/postfix/private/qs {" in conf
    assert "executable = quota-status -p postfix" in conf
    assert "quota_status_overquota = 552 5.2.2 Mailbox is full" in conf
    assert "check_policy_service unix:private/qs" in (
        rendered.postfix_settings["smtpd_recipient_restrictions"])


def test_logins_file_names_login_and_login_at_each_own_domain() -> None:
    state = one_domain(mailbox("jo", password=HASH), domain_aliases=("x.eu",))
    text = _file(render(state, LAYOUT, Facts()), "/logins")
    assert text.splitlines()[1:] == [
        "jo:::::::noauthenticate user=jo", "jo@x.be:::::::noauthenticate user=jo",
        "jo@x.eu:::::::noauthenticate user=jo"]
