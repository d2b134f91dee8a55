"""The JSON Schemas shipped for editors match what `mailstate schema` prints today."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailstate.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("which", ["domain", "config"])
def test_shipped_schema_is_current(which: str) -> None:
    result = CliRunner().invoke(main, ["schema", which])
    assert result.exit_code == 0
    shipped = json.loads((ROOT / "schema" / f"{which}.schema.json").read_text())
    assert json.loads(result.output) == shipped, (
        f"schema/{which}.schema.json is stale: run `mailstate schema {which} --out "
        f"schema/{which}.schema.json`")


def test_domain_schema_forbids_unknown_keys_and_names_the_manual_fields() -> None:
    schema = json.loads((ROOT / "schema" / "domain.schema.json").read_text())
    assert schema["additionalProperties"] is False
    mailbox = schema["$defs"]["MailboxSpec"]["properties"]
    assert {"name", "password", "quota", "addresses", "forward", "vacation"} <= set(mailbox)
    assert "from" in schema["$defs"]["VacationSpec"]["properties"]
