"""The JSON plan keeps the documented shape: schema/plan.schema.json and docs/plan-json.md.

Every plan case's JSON (tests/unit/test_plan.py) is validated with ``validate_plan_json``;
here: hand-made plans of every kind, a huge one, and the documentation naming every field.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from mailstate.model.state import Domain, Greylisting, ServerState, Vacation
from mailstate.plan import Plan, ServerPlan, diff_states
from mailstate.views.json import FORMAT, render_json

from .conftest import REPO

SCHEMA = json.loads((REPO / "schema" / "plan.schema.json").read_text())
DOC = (REPO / "docs" / "plan-json.md").read_text()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def validate_plan_json(text: str) -> dict[str, Any]:
    data = json.loads(text)
    errors = sorted(VALIDATOR.iter_errors(data), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    return data


def every_kind() -> Plan:
    from .test_plan import mailbox

    vacation = Vacation(subject="Away", message="Back soon.\n", start="2026-12-20")
    before = ServerState(greylisting=Greylisting(enabled=False), domains={
        "monsite.be": Domain(name="monsite.be", domain_aliases=("monsite.fr",), mailboxes={
            "old": mailbox("old"), "info": mailbox("info")},
            aliases={"x@monsite.be": ("a@gmail.com",), "y@monsite.be": ("b@gmail.com",)}),
        "gone.be": Domain(name="gone.be")})
    after = ServerState(domains={
        "monsite.be": Domain(name="monsite.be", domain_aliases=("monsite.com",),
                             greylisting=False, catch_all=("info@monsite.be",), mailboxes={
            "info": mailbox("info", quota=2 * 1024**3, forward=("f@gmail.com",)),
            "new": mailbox("new", vacation=vacation, addresses=("contact@monsite.be",))},
            aliases={"x@monsite.be": ("c@gmail.com",), "z@monsite.be": ("d@gmail.com",)}),
        "added.be": Domain(name="added.be")})
    from mailstate.model.routing import route_changes

    server = ServerPlan("s", "ssh://root@s", diff_states(before, after),
                        routing=route_changes(before, after), welcome=["new"],
                        live_fingerprint="a" * 64, desired_fingerprint="b" * 64)
    return Plan([server])


def test_a_plan_of_every_kind_of_change_matches_the_schema() -> None:
    plan = every_kind()
    data = validate_plan_json(render_json(plan))
    kinds = {(c["action"], c["kind"]) for c in data["servers"][0]["changes"]}
    assert {("add", "mailbox"), ("remove", "mailbox"), ("change", "mailbox"), ("add", "alias"),
            ("remove", "alias"), ("change", "alias"), ("add", "domain"), ("remove", "domain"),
            ("add", "domain alias"), ("remove", "domain alias"), ("add", "catch-all"),
            ("change", "greylisting"), ("change", "greylisting settings")} <= kinds
    assert data["servers"][0]["routing"]
    assert data["format"] == FORMAT == SCHEMA["properties"]["format"]["const"]


def test_an_added_mailbox_carries_its_fields_as_data() -> None:
    data = json.loads(render_json(every_kind()))
    [new] = [c for c in data["servers"][0]["changes"] if c["name"] == "new"]
    fields = {f["field"]: f["new"] for f in new["fields"]}
    assert fields["quota"] == "3G" and fields["addresses"] == ["contact@monsite.be"]
    assert fields["password"] == "(hash)" and fields["name"] == "Info"
    assert fields["vacation"]["subject"] == "Away" and fields["vacation"]["start"] == \
        "2026-12-20"
    assert all(f["old"] is None for f in new["fields"])


def test_a_huge_plan_matches_the_schema() -> None:
    from .test_plan import big_plan

    validate_plan_json(render_json(big_plan(20, 50)))


@pytest.mark.parametrize("damage", [
    lambda d: d.update(format=2),
    lambda d: d["servers"][0]["changes"][0].update(action="create"),
    lambda d: d["servers"][0]["changes"][0].update(extra=1),
    lambda d: d["servers"][0].pop("routing"),
    lambda d: d.update(checksum="sha256:00"),
    lambda d: next(c for c in d["servers"][0]["changes"] if c["kind"] == "mailbox" and
                   c["action"] == "add")["fields"].pop(0),
])
def test_the_schema_refuses_what_mailstate_does_not_write(damage) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(render_json(every_kind()))
    damage(data)
    assert list(VALIDATOR.iter_errors(data))


def test_the_documentation_names_every_property_of_the_schema() -> None:
    def names(node: Any) -> set[str]:
        found: set[str] = set()
        if isinstance(node, dict):
            found |= set(node.get("properties", {}))
            for value in node.values():
                found |= names(value)
        elif isinstance(node, list):
            for value in node:
                found |= names(value)
        return found

    documented = set(re.findall(r"`([a-z_]+)`", DOC))
    missing = names(SCHEMA) - documented
    assert not missing, f"docs/plan-json.md does not mention {sorted(missing)}"
    assert "compatib" in DOC.lower()
