"""Plans: data-driven cases on the local target, and the views (text, markdown, JSON).

Each directory under ``tests/cases/plan/`` is a case (see its README): a domain file, maybe a
starting domain file applied first and live files put on the server, and the expected plan.
One test runs them all. ``MAILSTATE_REGEN=1`` rewrites the expectations after a reviewed change.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from mailstate.model.state import Domain, Greylisting, Mailbox, ServerState, Vacation
from mailstate.plan import Change, FieldChange, FileAction, Plan, ServerPlan, diff_states
from mailstate.views.json import load_plan, render_json
from mailstate.views.markdown import render_markdown
from mailstate.views.text import plan_summary, render_text

from .conftest import REPO, LocalServer
from .test_plan_json import validate_plan_json

CASES = REPO / "tests" / "cases" / "plan"
REGEN = os.environ.get("MAILSTATE_REGEN") == "1"
VIEWS = {"plan.txt": "text", "plan.md": "markdown", "plan.json": "json"}
HASH_PARTS = ("$argon2id$", "N4YQIqT0fi9lTMmZ8x6DcA", "cA5B6D1nTIlRKuWcU2qt9Q",
              "u81pxxOgnS3a2Iy3reMdzs6WvFe2b2v9ohpBpW+qOM4")


def case_dirs() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.is_dir())


def normalise(text: str, server: LocalServer) -> str:
    """The server root as DIR; fingerprints (of rendered bytes) and checksums as placeholders
    (the checksum's own test is in test_checksum.py)."""
    text = text.replace(str(server.root), "DIR")
    text = re.sub(r"ms1:[0-9a-f]{8}:[0-9a-f]{32}", "<checksum>", text)
    return re.sub(r'("(?:live|desired)_fingerprint": )"[0-9a-f]{64}"', r'\1"<sha256>"', text)


def summary(plan_json: str) -> dict[str, Any]:
    """What the text view does not show in full: files, reloads, drift, welcome mails."""
    data = json.loads(plan_json)
    [server] = data["servers"]
    return {"summary": data["summary"], "has_changes": data["has_changes"],
            "files": {f["path"]: f"{f['action']} ({f['reason']}, {f['service']})"
                      for f in server["files"]},
            "reloads": server["reloads"], "drift": server["drift"],
            "warnings": server["warnings"], "welcome": server["welcome"]}


def expect(path: Path, actual: str) -> None:
    if REGEN or not path.exists():
        path.write_text(actual)
        if not REGEN:
            pytest.fail(f"{path.name} did not exist; written, review it")
    assert actual == path.read_text(), f"{path} differs (MAILSTATE_REGEN=1 after review)"


@pytest.mark.parametrize("case", case_dirs(), ids=lambda p: p.name)
def test_plan_case(case: Path, server: LocalServer) -> None:
    if (case / "before.yaml").exists():
        server.apply(server.domain((case / "before.yaml").read_text()))
    if (case / "live").is_dir():
        shutil.copytree(case / "live", server.root, dirs_exist_ok=True)
    path = server.domain((case / "domain.yaml").read_text())

    outputs: dict[str, str] = {}
    raw: dict[str, str] = {}
    for name, fmt in VIEWS.items():
        result = server.cli("plan", str(path), "--format", fmt, "-q")
        assert result.exit_code == 0, result.output
        raw[name] = result.stdout
        outputs[name] = normalise(result.stdout, server)
        assert result.stderr == ""  # -q: no progress, and nothing else to say
        if fmt == "json":
            validate_plan_json(result.stdout)
    expect(case / "plan.txt", outputs["plan.txt"])
    expect(case / "summary.json", json.dumps(summary(outputs["plan.json"]), indent=2) + "\n")
    for name in ("plan.md", "plan.json"):
        if (case / name).exists():
            expect(case / name, outputs[name])
    for text in outputs.values():
        for part in HASH_PARTS:
            assert part not in text
    plan = load_plan(raw["plan.json"])  # as saved: its checksum must still hold
    assert normalise(render_json(plan), server) == outputs["plan.json"]
    assert normalise(render_text(plan), server) == outputs["plan.txt"]
    assert normalise(render_markdown(plan), server) == outputs["plan.md"]

    code = 2 if plan.has_changes else 0
    assert server.cli("plan", str(path), "--detailed-exitcode").exit_code == code
    # and the loop closes: after apply the same files plan to nothing
    if plan.has_changes:
        result = server.cli("apply", str(path), "--auto-approve")
        if any("refuses this without --force" in w for s in plan.servers for w in s.warnings):
            assert result.exit_code == 1 and "apply with --force" in result.output, result.output
            result = server.cli("apply", str(path), "--auto-approve", "--force")
        assert result.exit_code == 0, result.output
    result = server.cli("plan", str(path), "--detailed-exitcode")
    assert result.exit_code == 0, result.output


def test_every_case_has_its_expectations() -> None:
    for case in case_dirs():
        assert (case / "domain.yaml").exists(), case
        assert (case / "plan.txt").exists() and (case / "summary.json").exists(), case
    first = CASES / "monsite-first"
    assert (first / "domain.yaml").resolve() == REPO / "examples" / "monsite.be.yaml"
    assert all((first / name).exists() for name in VIEWS)


# ---------------------------------------------------------------- views, on hand-made states

HASH = ("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$N4YQIqT0fi9lTMmZ8x6DcA"
        "$u81pxxOgnS3a2Iy3reMdzs6WvFe2b2v9ohpBpW+qOM4")
OTHER = "{BLF-CRYPT}$2y$10$abcdefghijklmnopqrstuu5Jb6NI5qZ1mnLz0VqS0bD5j4.xXmT9K"


def mailbox(login: str = "info", **changes: Any) -> Mailbox:
    fields: dict[str, Any] = {"login": login, "domain": "monsite.be", "name": "Info",
                              "password": HASH, "quota": 3 * 1024**3}
    return Mailbox(**{**fields, **changes})


def state(*mailboxes: Mailbox, **domain: Any) -> ServerState:
    return ServerState(domains={"monsite.be": Domain(
        name="monsite.be", mailboxes={m.login: m for m in mailboxes}, **domain)})


def two_servers() -> Plan:
    one = ServerPlan("maximusconfessor", "ssh://root@maximusconfessor",
                     diff_states(state(mailbox()), state(mailbox(quota=2 * 1024**3))),
                     [FileAction("/etc/dovecot/mailstate/passwd", "write", "dovecot", "changed")],
                     ["dovecot"])
    two = ServerPlan("gregorius", "ssh://root@gregorius:2222",
                     diff_states(ServerState(), state(mailbox("sales"))),
                     [FileAction("/etc/dovecot/mailstate/passwd", "write", "dovecot", "new")],
                     ["dovecot"], welcome=["sales"])
    return Plan([one, two])


def test_markdown_opens_with_the_summary_then_a_collapsed_section_per_domain() -> None:
    md = render_markdown(two_servers())
    assert md.startswith("### mailstate plan: 2 to add, 1 to change, 0 to remove\n")
    head, rest = md.split("<details>", 1)
    assert "| `maximusconfessor` | `ssh://root@maximusconfessor` | 0 | 1 | 0 | 1 | dovecot |" \
        in head
    assert "| `gregorius` | `ssh://root@gregorius:2222` | 2 | 0 | 0 | 1 | dovecot |" in head
    assert "Checksum: `ms1:" in head
    first, second = rest.split("<details>")
    assert first.startswith("<summary><code>monsite.be</code> on maximusconfessor: 1 to change")
    assert "| ~ | mailbox `info` | quota: `3G` → `2G` |" in first
    assert second.startswith("<summary><code>monsite.be</code> on gregorius: 2 to add")
    assert "| + | mailbox `sales` | `Info; 3G` |" in second
    assert md.count("</details>\n\n") == 2


def test_markdown_puts_warnings_first_and_names_welcome_mails() -> None:
    plan = two_servers()
    plan.servers[0].drift = ["/etc/dovecot/mailstate/passwd"]
    md = render_markdown(plan)
    warning = md.index("> :warning: maximusconfessor: drift: `/etc/dovecot/mailstate/passwd` was "
                       "edited by hand since the last apply")
    assert warning < md.index("<details>")
    assert "\nWelcome mail to (1): sales.\n" in md
    assert "\n  welcome mail to 1: sales\n" in render_text(plan)


def test_markdown_escapes_customer_text() -> None:
    note = "**bold** [x](https://evil.example) <img src=x> | @team\nnext"
    change = Change("add", "mailbox", "info", "monsite.be", note=note)
    md = render_markdown(Plan([ServerPlan("s", "local:DIR", [change])]))
    row = next(line for line in md.splitlines() if line.startswith("| + |"))
    assert row == ("| + | mailbox `info` | `**bold** [x](https://evil.example) <img src=x> \\| "
                   "@team next` |")


HOSTILE_TEXT = ["![x](//attacker.example/t.png)", "<img src=x onerror=alert(1)>", "@org/admins",
                "[click](https://attacker.example)", "https://attacker.example/", "`code`",
                "``", "a ` b", " padded ", "*bold* _em_ ~~s~~ #123", "x|y", "line\nbreak"]


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_customer_text_is_one_inert_code_span(text: str) -> None:
    """Everything GitHub would turn into markup, a link or a mention is inside a code span:
    a fence longer than any backtick run inside, no line break, '|' escaped for the table."""
    from mailstate.views.escape import escape_md

    out = escape_md(text)
    fence = re.match(r"`+", out).group()  # type: ignore[union-attr]
    assert out.endswith(fence) and "\n" not in out
    inner = out[len(fence):-len(fence)]
    assert fence not in inner and not inner.startswith("`") and not inner.endswith("`")
    assert inner.replace("\\|", "|").strip(" ") == text.replace("\n", " ").strip(" ")
    assert "|" not in inner.replace("\\|", "")


def test_markdown_view_sets_a_hostile_real_name_and_subject_in_code() -> None:
    old = mailbox()
    new = mailbox(name="![x](//attacker.example/t.png) @org/admins <img src=x>",
                  vacation=Vacation(subject="[win](https://attacker.example)", message="m"))
    md = render_markdown(Plan([ServerPlan("s", "local:DIR", diff_states(state(old), state(new)))]))
    row = next(line for line in md.splitlines() if line.startswith("| ~ |"))
    assert "`Info` → `![x](//attacker.example/t.png) @org/admins <img src=x>`" in row
    outside = re.sub(r"`[^`]*`", "", row)
    for mark in ("![", "](", "<img", "@org", "https://"):
        assert mark not in outside, row


def test_hashes_are_masked_on_any_line_of_any_view() -> None:
    from mailstate.model.passwords import mask_hashes

    hashed = ("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$N4YQIqT0fi9lTMmZ8x6DcA$u81pxxOgnS3a2Iy3"
              "reMdzs6WvFe2b2v9ohpBpW+qOM4")
    warning = f"/etc/x:3: not understood: {hashed}:5000:5000::/root:: and $6$rounds=5000$ab$cd"
    assert mask_hashes(warning) == ("/etc/x:3: not understood: <hash>:5000:5000::/root:: and "
                                    "<hash>")
    plan = Plan([ServerPlan("s", "local:DIR", warnings=[warning])])
    for view in (render_text(plan), render_markdown(plan)):
        assert "argon2id" not in view and "N4YQ" not in view and "rounds=" not in view, view


def test_json_round_trips() -> None:
    plan = two_servers()
    plan.servers[0].drift = ["/etc/dovecot/mailstate/passwd"]
    plan.servers[0].warnings = ["a warning"]
    plan.servers[0].live_fingerprint = "a" * 64
    again = load_plan(render_json(plan))
    assert again == plan
    assert render_text(again) == render_text(plan)
    assert render_markdown(again) == render_markdown(plan)


def test_greylisting_settings_show_units_and_round_trip_through_json() -> None:
    old = ServerState(greylisting=Greylisting(enabled=False, delay=300))
    new = ServerState(greylisting=Greylisting(delay=1800, max_age=60,
                                              whitelist_clients=("192.0.2.0/24",)))
    plan = Plan([ServerPlan("s", "local:DIR", diff_states(old, new))])
    text = render_text(plan)
    assert "~ greylisting settings postgrey\n" in text
    for line in ("enabled: no -> yes", "delay: 5m -> 30m", "max_age: 35d -> 60d",
                 "whitelist_clients: (none) -> 192.0.2.0/24"):
        assert f"      {line}\n" in text, line
    assert load_plan(render_json(plan)) == plan


def test_no_hash_in_any_view() -> None:
    changes = diff_states(state(mailbox()), state(mailbox(password=OTHER)))
    assert changes == [Change("change", "mailbox", "info", "monsite.be",
                              [FieldChange("password", "(hash)", "(new hash)")])]
    plan = Plan([ServerPlan("s", "local:DIR", changes)])
    added = Plan([ServerPlan("s", "local:DIR", diff_states(ServerState(), state(mailbox())))])
    for view in (render_text(plan), render_markdown(plan), render_json(plan),
                 render_text(added), render_markdown(added), render_json(added)):
        assert HASH not in view and OTHER not in view
        assert "$argon2id$" not in view and "$2y$" not in view


def test_changes_inside_a_mailbox_are_fields() -> None:
    vacation = Vacation(subject="Away", message="Back soon.\n")
    old = mailbox(addresses=("contact@monsite.be",), forward=("a@gmail.com",), vacation=vacation)
    new = mailbox(addresses=("contact@monsite.be", "info2@monsite.be"), forward=(),
                  keep_copy=True, quota=1024**3,
                  vacation=vacation.model_copy(update={"message": "Back on Monday.\n",
                                                       "interval": 86400}))
    [change] = diff_states(state(old), state(new))
    assert change.action == "change" and change.kind == "mailbox"
    assert [(f.field, f.old, f.new) for f in change.fields] == [
        ("addresses", ["contact@monsite.be"], ["contact@monsite.be", "info2@monsite.be"]),
        ("forward", ["a@gmail.com"], []),
        ("quota", "3G", "1G"),
        ("vacation.interval", "10m", "1d"),
        ("vacation.message", "(old text)", "(new text)"),
    ]


def test_a_reordered_state_is_no_change() -> None:
    one = state(mailbox("a"), mailbox("b"), aliases={"x@monsite.be": ("a@monsite.be",),
                                                     "y@monsite.be": ("b@monsite.be",)})
    two = state(mailbox("b"), mailbox("a"), aliases={"y@monsite.be": ("b@monsite.be",),
                                                     "x@monsite.be": ("a@monsite.be",)})
    assert diff_states(one, two) == []


def test_summary_lines() -> None:
    assert plan_summary(Plan([ServerPlan("s", "t")])) == \
        "No changes. The servers match the domain files."
    layout_only = Plan([ServerPlan("s", "t", files=[FileAction("/f", "write", "postfix",
                                                               "changed")])])
    assert layout_only.has_changes
    assert plan_summary(layout_only) == ("Plan: 0 to add, 0 to change, 0 to remove. "
                                     "(Only file layout differs; the state is the same.)")
    assert "no changes" in render_text(Plan([ServerPlan("s", "t")]))


@pytest.mark.parametrize("text", ["[]", "{}", '{"format": 2, "servers": []}', '{"format": 1}',
                                  '{"format": 1, "servers": [{"server": "s"}]}',
                                  '{"format": 1, "servers": [{"changes": [], "files": [], '
                                  '"nonsense": 1}]}'])
def test_from_json_refuses_what_is_not_a_plan(text: str) -> None:
    with pytest.raises(ValueError, match="plan file"):
        load_plan(text)


def big_plan(domains: int = 100, mailboxes: int = 100) -> Plan:
    """The first plan of a provider's repository, built in memory (no files rendered)."""
    desired = ServerState(domains={
        f"cust{d:04d}.example": Domain(name=f"cust{d:04d}.example", mailboxes={
            f"cust{d:04d}{i:04d}": mailbox(f"cust{d:04d}{i:04d}", domain=f"cust{d:04d}.example",
                                           addresses=(f"user{i}@cust{d:04d}.example",))
            for i in range(mailboxes)}) for d in range(domains)})
    server = ServerPlan("bench", "local:DIR", diff_states(ServerState(), desired),
                        welcome=sorted(desired.mailboxes()))
    return Plan([server])


def test_markdown_of_a_huge_plan_stays_under_the_budget_and_counts_what_it_cannot_list() -> None:
    plan = big_plan()
    md = render_markdown(plan, "the artefact plan.txt of this job")
    assert len(md) < 65_000
    assert len(render_text(plan)) > 800_000  # the full plan is far larger
    assert md.startswith("### mailstate plan: 10100 to add, 0 to change, 0 to remove\n")
    assert max(map(len, md.splitlines())) < 2_000  # nothing like one 100 KB line
    assert md.count("<details>") == 100  # every domain has its section
    counted = md.count("Too long to show here: ")
    assert 0 < counted < 100 and md.count("| + | domain `") == 100 - counted
    note = next(line for line in md.splitlines() if "too long for one comment" in line)
    assert f"{counted} section(s) are counted instead of listed" in note
    assert "left out" not in note
    assert note.endswith("The full plan: the artefact plan.txt of this job.")
    assert md.endswith("Plan: 10100 to add, 0 to change, 0 to remove.\n")
    text = render_text(plan)
    assert max(map(len, text.splitlines())) <= 200  # the welcome list is wrapped


def test_markdown_of_a_plan_of_thousands_of_domains_names_what_it_left_out() -> None:
    md = render_markdown(big_plan(2000, 2))
    assert len(md) < 65_000
    note = next(line for line in md.splitlines() if "too long for one comment" in line)
    shown = md.count("<details>")
    left_out = int(re.search(r"(\d+) section\(s\) with", note).group(1))  # type: ignore
    assert shown + left_out == 2000 and left_out > 1000
    assert "are left out: `cust" in note and " and " in note  # named, then counted
    assert "run `mailstate plan` for the full text plan" in note


def test_markdown_of_a_small_plan_leaves_nothing_out() -> None:
    md = render_markdown(big_plan(3, 5))
    assert "too long" not in md and md.count("<details>") == 3
    assert md.count("| + | mailbox `") == 15


def test_a_saved_plan_edited_by_hand_is_refused() -> None:
    """Removing a change from `plan --out`'s JSON (so that apply does what the reviewers never
    saw) is refused: the checksum is recomputed from what was loaded."""
    text = render_json(two_servers())
    data = json.loads(text)
    assert data["servers"][0]["changes"]
    data["servers"][0]["changes"].pop()
    with pytest.raises(ValueError, match="the saved plan was edited since it was made; make "
                       "it again with `mailstate plan --out`"):
        load_plan(json.dumps(data))
    data = json.loads(text)
    del data["checksum"]
    with pytest.raises(ValueError, match="edited since it was made"):
        load_plan(json.dumps(data))


@pytest.mark.parametrize("damage", [
    lambda d: d.update(servers={"a": 1}),
    lambda d: d.update(servers=[1]),
    lambda d: d.update(servers=None),
    lambda d: d["servers"][0].update(changes=5),
    lambda d: d["servers"][0].update(moved=[1, 2]),
    lambda d: d["servers"][0].update(reloads="postfix"),
    lambda d: d["servers"][0].update(server=["mx1"]),
    lambda d: d["servers"][0].update(live_objects="3"),
    lambda d: d["servers"][0]["changes"][0].update(fields=["x"]),
    lambda d: d["servers"][0]["changes"][0].update(name={"x": 1}),
    lambda d: d["servers"][0]["changes"][0].update(action="explode"),
    lambda d: d["servers"][0]["changes"][0].pop("kind"),
    lambda d: d["servers"][0].pop("server"),
    lambda d: d["servers"][0].update(extra=1),
])
def test_a_damaged_saved_plan_is_a_clear_error(damage: Any) -> None:
    data = json.loads(render_json(two_servers()))
    damage(data)
    with pytest.raises(ValueError, match="a damaged mailstate plan file"):
        load_plan(json.dumps(data))
    for shape in ("[]", "3", '"x"', "null", '{"format": 1}'):
        with pytest.raises(ValueError):
            load_plan(shape)
