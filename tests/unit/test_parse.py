"""parse(): lenient reading, loud warnings, and exactness on the hard cases."""

from __future__ import annotations

import datetime as dt
import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailstate.files.parse import parse
from mailstate.files.paths import managed_paths
from mailstate.files.render import render
from mailstate.model.layout import Facts, Layout
from mailstate.model.state import Greylisting, ServerState, Vacation

from .samples import mailbox, one_domain
from .strategies import server_states

LAYOUT = Layout()
FACTS = Facts()
HASH = "{SHA512-CRYPT}$6$saltsalt$c2VjcmV0aGFzaA"
PF = LAYOUT.postfix_dir
PASSWD = f"{LAYOUT.dovecot_dir}/passwd"


box = functools.partial(mailbox, password=HASH)
state = one_domain


def files_of(s: ServerState) -> dict[str, bytes]:
    return {f.path: f.content for f in render(s, LAYOUT, FACTS).files}


def test_no_files_is_an_empty_server() -> None:
    parsed = parse({}, LAYOUT, FACTS)
    assert parsed.warnings == []
    assert parsed.state.domains == {}
    # nothing hooks postgrey in yet; its own defaults are what it would do
    assert parsed.state.greylisting == Greylisting(enabled=False, delay=300, max_age=35,
                                                   auto_whitelist_clients=5)


def test_managed_paths_cover_everything_render_writes() -> None:
    s = state(box(vacation=Vacation(subject="a", message="b")))
    paths = managed_paths(LAYOUT)
    for f in render(s, LAYOUT, FACTS).files:
        assert f.path in paths.files or any(
            f.path.startswith(d + "/") and f.path.endswith(sfx)
            for d, sfx in paths.directories.items())


def test_extra_address_and_alias_to_a_mailbox_stay_apart() -> None:
    s = state(box(addresses=("info@x.be",)), box("admin"),
              aliases={"postmaster@x.be": ("admin@x.be",)})
    parsed = parse(files_of(s), LAYOUT, FACTS)
    assert parsed.warnings == []
    assert parsed.state == s


@pytest.mark.parametrize("text", [
    "", ".", "..", "\n", "\n\n", "a\n.\nb", ".\n", " trailing \n  ", '"', "\\", '\\"', '"\\',
    "ends with backslash \\", "tab\there", "é✓日本 \U0001f600", "line\u2028sep\x85nel\x0bvt\x0cff",
    'text:\nfake multiline\n.\n', "# not a comment", "/* nor this */", "redirect \"x@y.be\";",
])
def test_vacation_message_round_trips_exactly(text: str) -> None:
    v = Vacation(subject='S "q" \\ é', message=text, sender="jo@x.be", interval=1,
                 start=dt.date(2030, 1, 1), end=dt.date(2030, 1, 2))
    s = state(box(vacation=v))
    parsed = parse(files_of(s), LAYOUT, FACTS)
    assert parsed.warnings == []
    assert parsed.state.domains["x.be"].mailboxes["jo"].vacation == v


def test_postfix_spelling_variants_are_no_change() -> None:
    s = state(box(forward=("a@y.be", "b@y.be")), aliases={"team@x.be": ("a@y.be", "jo@x.be")})
    files = files_of(s)
    path = f"{PF}/virtual_aliases"
    text = files[path].decode()
    text = text.replace("jo@x.be jo@x.be, a@y.be, b@y.be", "jo@x.be\tjo@x.be,a@y.be,\n  b@y.be")
    text = text.replace("team@x.be a@y.be, jo@x.be", "team@x.be   a@y.be  jo@x.be  ")
    files[path] = ("# a comment\n\n" + text).encode()
    parsed = parse(files, LAYOUT, FACTS)
    assert [w for w in parsed.warnings if "header" not in w] == []
    assert parsed.state == s


def test_unknown_lines_are_reported_with_path_and_line() -> None:
    files = files_of(state(box()))
    files[f"{PF}/virtual_aliases"] += b"stray@elsewhere.org target@y.be\nlonely\n"
    files[f"{PF}/virtual_mailbox_domains"] += b"x.be OK\n"
    parsed = parse(files, LAYOUT, FACTS)
    assert f"{PF}/virtual_aliases:3: not understood: stray@elsewhere.org target@y.be" in \
        " ".join(parsed.warnings)
    assert any(w.startswith(f"{PF}/virtual_aliases:4: not understood: lonely")
               for w in parsed.warnings)
    assert any(w.startswith(f"{PF}/virtual_mailbox_domains:3: not understood: x.be OK")
               for w in parsed.warnings)
    assert parsed.state == state(box())


def test_passwd_warnings_never_show_the_hash() -> None:
    files = files_of(state(box()))
    files[PASSWD] += f"ghost:{HASH}:5000:5000:G:/elsewhere/ghost::\n".encode()
    files[PASSWD] += f"jo:{HASH}:5000:5000:dup:/var/vmail/x.be/jo::\n".encode()
    parsed = parse(files, LAYOUT, FACTS)
    assert len(parsed.warnings) == 2
    assert all(PASSWD in w and "<hash>" in w and "c2VjcmV0" not in w for w in parsed.warnings)


def test_a_hash_is_masked_wherever_it_sits_on_a_line() -> None:
    """A hand-edited passwd line that starts with the hash, and a hash pasted into a map."""
    files = files_of(state(box()))
    files[PASSWD] += f"{HASH}:jo:5000:5000::/var/vmail/x.be/jo::\n".encode()
    files[f"{PF}/virtual_mailbox_domains"] += f"{HASH} OK\n".encode()
    parsed = parse(files, LAYOUT, FACTS)
    assert len(parsed.warnings) == 2, parsed.warnings
    for warning in parsed.warnings:
        assert "<hash>" in warning and "argon2" not in warning and HASH[-20:] not in warning


def test_inconsistent_files_are_reported() -> None:
    s = state(box(), domain_aliases=("x.com",))
    files = files_of(s)
    path = f"{PF}/virtual_aliases"
    files[path] = files[path].replace(b"jo@x.com jo@x.be\n", b"jo@x.com other@y.be\n")
    parsed = parse(files, LAYOUT, FACTS)
    assert parsed.state == s
    assert any(w.startswith(f"{path}:") and "jo@x.com other@y.be" in w for w in parsed.warnings)
    assert f"{path}: missing: jo@x.com jo@x.be" in parsed.warnings


def test_hand_edited_sieve_script_is_reported_at_its_line() -> None:
    s = state(box(vacation=Vacation(subject="Away", message="Back")))
    files = files_of(s)
    path = f"{LAYOUT.sieve_dir}/jo.sieve"
    files[path] = files[path].replace(b"}\n", b"}\ndiscard;\n")
    parsed = parse(files, LAYOUT, FACTS)
    assert parsed.state == s
    line = files[path].decode().split("\n").index("discard;") + 1
    assert parsed.warnings == [f"{path}:{line}: not understood: discard; "
                               "(differs from what mailstate renders)"]


def test_unreadable_or_foreign_sieve_scripts_are_reported() -> None:
    files = files_of(state(box()))
    files[f"{LAYOUT.sieve_dir}/nobody.sieve"] = b'# managed by mailstate\nkeep;\n'
    files[f"{LAYOUT.sieve_dir}/jo.sieve"] = b'# managed by mailstate\nrequire "x";\n"open'
    parsed = parse(files, LAYOUT, FACTS)
    assert parsed.state == state(box())
    assert any("nobody.sieve:1: not understood" in w and "no such mailbox" in w
               for w in parsed.warnings)
    assert any("jo.sieve:3: not understood" in w for w in parsed.warnings)


def test_files_the_server_derives_are_ignored() -> None:
    s = state(box(vacation=Vacation(subject="a", message="b")))
    files = files_of(s)
    files[f"{PF}/virtual_aliases.db"] = b"\x00\x01binary"
    files[f"{PF}/recipient_access.lmdb"] = b"\x00"
    files[f"{LAYOUT.sieve_dir}/jo.svbin"] = b"\x00"
    parsed = parse(files, LAYOUT, FACTS)
    assert parsed.warnings == []
    assert parsed.state == s


def test_duplicate_keys_and_missing_header_are_reported() -> None:
    files = files_of(state(box()))
    path = f"{PF}/virtual_mailboxes"
    lines = files[path].decode().split("\n")
    files[path] = "\n".join([*lines[1:], lines[1], ""]).encode()
    parsed = parse(files, LAYOUT, FACTS)
    assert any(w.startswith(f"{path}:1: not understood") and "header" in w
               for w in parsed.warnings)
    assert any(w.startswith(f"{path}:3: not understood") and "duplicate" in w
               for w in parsed.warnings)


def test_stock_debian_postgrey_default_is_read_as_postgrey_would() -> None:
    stock = (b"# postgrey startup options, created for Debian\n\n"
             b'POSTGREY_OPTS="--inet=10023"\n\n'
             b'#POSTGREY_TEXT="Your customized rejection message here"\n')
    parsed = parse({LAYOUT.postgrey_default: stock}, LAYOUT, FACTS)
    assert parsed.state.greylisting == Greylisting(enabled=False, delay=300, max_age=35,
                                                   auto_whitelist_clients=5)
    assert any("no mailstate header" in w for w in parsed.warnings)
    assert any('POSTGREY_OPTS="--inet=10023"' in w for w in parsed.warnings)


def test_disabled_primary_and_sieve_forwarding_are_read_back() -> None:
    v = Vacation(subject="Away", message="Back", start=dt.date(2030, 5, 1))
    s = state(box(primary_enabled=False, addresses=("info@x.be",), forward=("a@y.be", "b@y.be"),
                  keep_copy=False, vacation=v), domain_aliases=("x.com", "x.eu"),
              greylisting=False, catch_all=("info@x.be",))
    for facts in (FACTS, Facts(dovecot_version="2.4.1", db_type="lmdb")):
        parsed = parse({f.path: f.content for f in render(s, LAYOUT, facts).files}, LAYOUT,
                       facts)
        assert parsed.warnings == []
        assert parsed.state == s


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=server_states(max_domains=2), data=st.data())
def test_damaged_files_never_crash_parse(s: ServerState, data: st.DataObject) -> None:
    """Whatever is in a live file, parse returns a state and warnings, never an exception."""
    files = files_of(s)
    extra = f"{LAYOUT.sieve_dir}/{data.draw(st.sampled_from(['jo', 'x']))}.sieve"
    paths = [*sorted(files), extra]
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(paths))
        old = files.get(path, b"")
        cut = data.draw(st.integers(0, len(old)))
        junk = data.draw(st.one_of(
            st.binary(max_size=40),
            st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
            st.sampled_from([b"\r\n", b"\n \t", b":", b'"', b"\\", b"a@b c@d\n", b"x@x.be\n",
                             b"#", b"\x00", b"vacation :seconds", b"userdb_quota_rule=*:storage=",
                             b"jo:{X}h:5000:5000:n:/var/vmail/x.be/jo::\n"])))
        files[path] = old[:cut] + junk + old[cut:]
    parsed = parse(files, LAYOUT, FACTS)
    assert isinstance(parsed.state, ServerState)
    for w in parsed.warnings:
        assert isinstance(w, str)
