"""The plan cache (``mailstate.guards.plan_cache``): a plan of files and servers that did not change
is served without loading the repository, and is the very plan a full load makes; anything
that changes, on either side, makes a full plan again."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mailstate import Manager
from mailstate.guards import plan_cache
from mailstate.views.json import render_json

from .test_manager import cli, fleet_repo, write

SERVER = "servers/mx1"


def plan_json(repo: Path, cache: bool = True) -> tuple[str, bool]:
    """(the JSON plan, whether the repository had to be loaded for it)."""
    manager = Manager(repo, cache=cache)
    manager.check()
    with manager.plan() as fleet:
        assert fleet.ok, fleet.errors
        return render_json(fleet.plan), manager.loaded


@pytest.fixture
def applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository of one server, applied, with its record written (a cache of its own)."""
    monkeypatch.setenv(plan_cache.ENV, str(tmp_path / "cache"))
    repo = fleet_repo(tmp_path, {"mx1": ""})
    write(repo, "alpha.be", "mx1", ["alpha", "alpha0001"])
    write(repo, "beta.be", "mx1", ["beta"])
    with Manager(repo).apply() as fleet:
        assert fleet.ok, fleet.errors
    return repo


def test_an_unchanged_repository_and_server_plan_without_loading(applied: Path) -> None:
    warm, loaded = plan_json(applied)
    assert not loaded
    cold, loaded = plan_json(applied, cache=False)
    assert loaded
    assert warm == cold
    assert json.loads(warm)["has_changes"] is False


def test_a_second_apply_is_served_from_the_record_and_writes_nothing(applied: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in applied.parent.joinpath(SERVER).rglob("*")}
    manager = Manager(applied)
    manager.check()
    with manager.apply() as fleet:
        assert fleet.ok and not manager.loaded
        assert fleet.servers[0].applied and not fleet.servers[0].applied.changed
    after = {p: p.stat().st_mtime_ns for p in applied.parent.joinpath(SERVER).rglob("*")}
    assert before == after


def _edit_domain(repo: Path) -> None:
    write(repo, "beta.be", "mx1", ["beta", "beta0001"])


def _add_domain(repo: Path) -> None:
    write(repo, "gamma.be", "mx1", ["gamma"])


def _remove_domain_file(repo: Path) -> None:
    (repo / "domains" / "beta.be.yaml").unlink()


def _edit_config(repo: Path) -> None:
    config = repo / "mailstate.yaml"
    config.write_text(config.read_text().replace("    target:", "    max_safe_delete: 90\n"
                                                 "    target:"))


def _hand_edit_server(repo: Path) -> None:
    path = repo.parent / SERVER / "etc/postfix/mailstate/virtual_aliases"
    path.write_text(path.read_text() + "stray@alpha.be other@example.org\n")


def _remove_server_file(repo: Path) -> None:
    (repo.parent / SERVER / "etc/dovecot/mailstate/passwd").unlink()


def _unfinished_apply(repo: Path) -> None:
    journal = repo.parent / SERVER / "var/lib/mailstate/journal"
    journal.mkdir()
    (journal / "kind").write_text("apply\n")


def _postconf_changed(repo: Path) -> None:
    path = repo.parent / SERVER / "etc/postfix/main.cf"
    path.write_text(path.read_text().replace("virtual_transport", "#virtual_transport"))


# (what changes, whether the plan then has changes)
CHANGES: list[tuple[Callable[[Path], None], bool]] = [
    (_edit_domain, True), (_add_domain, True), (_remove_domain_file, True),
    (_edit_config, False), (_hand_edit_server, True), (_remove_server_file, True),
    (_unfinished_apply, True), (_postconf_changed, True),
]


@pytest.mark.parametrize(("change", "changes"), CHANGES, ids=[c.__name__ for c, _ in CHANGES])
def test_any_change_on_either_side_plans_in_full(applied: Path, change: Callable[[Path], None],
                                                 changes: bool) -> None:
    change(applied)
    warm, loaded = plan_json(applied)
    assert loaded
    cold, _ = plan_json(applied, cache=False)
    assert warm == cold
    assert json.loads(warm)["has_changes"] is changes


def test_a_domain_file_turned_into_a_link_to_the_same_bytes_is_refused(applied: Path) -> None:
    path = applied / "domains" / "beta.be.yaml"
    kept = applied.parent / "beta.be.yaml"
    shutil.move(path, kept)
    path.symlink_to(kept)
    code, _, err = cli("plan", str(applied))
    assert code == 1 and "a symbolic link" in err


def test_mail_in_a_mailbox_changes_nothing_but_the_usage(applied: Path) -> None:
    box = applied.parent / SERVER / "var/vmail/beta.be/beta/Maildir/cur"
    box.mkdir(parents=True, exist_ok=True)
    (box / "1.M1.host:2,S").write_bytes(b"x" * 4096)
    warm, loaded = plan_json(applied)
    assert not loaded and warm == plan_json(applied, cache=False)[0]


def test_over_quota_warnings_are_made_from_the_usage_read_now() -> None:
    quotas = [("beta.be/beta", "beta@beta.be", 1048576)]
    assert plan_cache.quota_warnings(quotas, {"beta.be/beta": 2097152}) == [
        "mailbox beta@beta.be holds 2.0M, more than its quota 1M: new mail will be refused "
        "until it is emptied or the quota raised"]
    assert not plan_cache.quota_warnings(quotas, {"beta.be/beta": 1048576})


def test_warnings_come_back_from_the_record(applied: Path) -> None:
    first = Manager(applied)
    first.check()
    second = Manager(applied)
    assert second.check() == first.issues


def test_a_cache_folder_others_can_write_is_not_used(applied: Path) -> None:
    folder = Path(os.environ[plan_cache.ENV])
    folder.chmod(0o777)
    try:
        _, loaded = plan_json(applied)
        assert loaded
    finally:
        folder.chmod(0o700)


def test_a_cache_folder_that_cannot_be_made_leaves_the_plan_as_it_is(
        applied: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(plan_cache.ENV, str(tmp_path / "a-file" / "cache"))
    for _ in range(2):
        text, loaded = plan_json(applied)
        assert loaded and json.loads(text)["has_changes"] is False


def test_a_damaged_record_is_ignored(applied: Path) -> None:
    for record in Path(os.environ[plan_cache.ENV]).glob("*.json"):
        record.write_text('{"format": 1, "name": ')
    _, loaded = plan_json(applied)
    assert loaded
    _, loaded = plan_json(applied)  # the full plan wrote a good record again
    assert not loaded


def test_no_cache_on_the_command_line_loads_everything(applied: Path) -> None:
    code, out, _ = cli("plan", "--no-cache", "-q", str(applied))
    assert code == 0 and "No changes" in out


def test_the_code_digest_covers_code_and_templates(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "plan.py").write_text("x = 1\n")
    (tmp_path / "templates" / "server-read.sh").write_text("#!/bin/sh\n")
    digests = {plan_cache.folder_digest(tmp_path)}
    (tmp_path / "templates" / "server-read.sh").write_text("#!/bin/sh\nexit 1\n")
    digests.add(plan_cache.folder_digest(tmp_path))
    (tmp_path / "plan.py").write_text("x = 2\n")
    digests.add(plan_cache.folder_digest(tmp_path))
    assert len(digests) == 3


def test_the_cli_plan_reads_the_same_when_served_from_the_record(applied: Path) -> None:
    assert cli("plan", "--no-cache", str(applied))[:2] == cli("plan", str(applied))[:2]


def _warm_prepared(repo: Path):  # type: ignore[no-untyped-def]
    manager = Manager(repo)
    manager.check()
    fleet = manager.plan()
    assert fleet.ok and not manager.loaded
    return fleet, fleet.servers[0].prepared


def test_a_matching_server_sends_its_manifest_and_not_its_files(applied: Path) -> None:
    fleet, prepared = _warm_prepared(applied)
    with fleet:
        assert prepared.snapshot.matched
        assert list(prepared.snapshot.files) == ["/var/lib/mailstate/manifest.json"]


def test_a_stray_file_with_an_odd_name_is_not_taken_for_a_match(applied: Path) -> None:
    sieve = applied.parent / SERVER / "etc/dovecot/mailstate/sieve"
    sieve.mkdir(parents=True, exist_ok=True)
    (sieve / "odd \\ name.sieve").write_text("")
    warm, loaded = plan_json(applied)
    assert loaded and warm == plan_json(applied, cache=False)[0]


def test_a_server_that_sends_every_file_anyway_gives_the_same_plan(applied: Path) -> None:
    """The read-only key's program ignores what the client expects and sends everything."""
    from mailstate.engine.prepare import prepare_unchanged
    from mailstate.model.layout import Facts
    from mailstate.server.read import read_snapshot

    fleet, prepared = _warm_prepared(applied)
    with fleet:
        record = plan_cache.load([str(applied)])
        assert record is not None
        server = record.servers["mx1"]
        full = read_snapshot(prepared.transport, prepared.layout, Facts())
        assert not full.matched and len(full.files) > 1
        again = prepare_unchanged(server, "mx1", prepared.config, prepared.transport, full)
        assert again is not None and again.plan == prepared.plan


def test_a_record_that_cannot_be_put_in_place_leaves_nothing(
        applied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = Path(os.environ[plan_cache.ENV])
    for record in folder.glob("*.json"):
        record.unlink()
    shutil.rmtree(folder / "files", ignore_errors=True)  # the per-file records

    def full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plan_cache.os, "replace", full)
    text, loaded = plan_json(applied)
    assert loaded and json.loads(text)["has_changes"] is False
    monkeypatch.undo()
    assert [p for p in folder.rglob("*") if p.is_file()] == []
