"""The state an apply records: used instead of parsing only when it provably matches the files.

After an apply the server keeps ``state.json`` beside the manifest. A plan may take the live
state from it only when every managed file still hashes to what that same apply wrote;
anything else (a hand edit, a damaged or foreign record) falls back to parsing the files.
"""

from __future__ import annotations

import json

import pytest

import mailstate.files.parse
from mailstate.files.parse import parse as real_parse
from tests.unit.conftest import LocalServer


def _change_quota(server: LocalServer) -> None:
    text = server.example().read_text().replace("quota: 3G", "quota: 4G")
    server.domain(text)


def _plan_fields(server: LocalServer) -> list[tuple[str, str, list]]:
    _, prepared = server.prepare(server.work / "monsite.be.yaml")
    return [(c.kind, c.name, [(f.field, f.old, f.new) for f in c.fields])
            for p in prepared for c in p.plan.changes]


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(mailstate.files.parse, "parse", counting)  # reconcile imports it per call
    return calls


def test_apply_records_the_state_it_wrote(server: LocalServer) -> None:
    server.apply(server.example())
    record = json.loads((server.state_dir / "state.json").read_text())
    manifest = json.loads((server.state_dir / "manifest.json").read_text())
    assert record["generation"] == manifest["generation"]
    assert "monsite0001" in record["state"]["domains"]["monsite.be"]["mailboxes"]


def test_untouched_files_use_the_record_and_give_the_same_plan(
        server: LocalServer, parses: list[int]) -> None:
    server.apply(server.example())
    parses.clear()
    _change_quota(server)
    from_record = _plan_fields(server)
    assert parses == []
    assert from_record == [("mailbox", "monsite0001", [("quota", "3G", "4G")])]
    (server.state_dir / "state.json").unlink()
    assert _plan_fields(server) == from_record  # parsing the files agrees
    assert parses == [1]


@pytest.mark.parametrize("damage", ["not json", '{"format": 1}', "foreign-generation"])
def test_a_damaged_or_foreign_record_falls_back_to_parsing(
        server: LocalServer, parses: list[int], damage: str) -> None:
    server.apply(server.example())
    parses.clear()
    path = server.state_dir / "state.json"
    if damage == "foreign-generation":
        record = json.loads(path.read_text())
        record["generation"] = "19990101T000000000000Z"
        record["state"]["domains"] = {}  # would plan everything as new if it were trusted
        path.write_text(json.dumps(record))
    else:
        path.write_text(damage)
    _change_quota(server)
    assert _plan_fields(server) == [("mailbox", "monsite0001", [("quota", "3G", "4G")])]
    assert parses == [1]


def test_a_hand_edited_file_is_parsed_not_trusted(server: LocalServer, parses: list[int]) -> None:
    server.apply(server.example())
    parses.clear()
    aliases = server.root / "etc/postfix/mailstate/virtual_aliases"
    aliases.write_text(aliases.read_text().replace(
        "frederic@monsite.be frederic@gmail.com", "frederic@monsite.be someone@else.example"))
    changes = _plan_fields(server)
    assert parses == [1]
    assert ("alias", "frederic@monsite.be",
            [("to", ["someone@else.example"], ["frederic@gmail.com"])]) in changes
