"""The JSON Schemas shipped for editors match what `mailstate schema` prints today."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from mailstate.cli import main
from mailstate.config.yaml_reader import read_yaml

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


# ------------------------------------------------ the shipped schemas accept the project's files

VALID_DOMAIN_FILES = sorted(
    [*ROOT.glob("examples/*.yaml"), *ROOT.glob("examples/repo/domains/*.yaml"),
     *ROOT.glob("tests/cases/warnings/*.yaml"), *ROOT.glob("tests/cases/plan/*/*.yaml")])
VALID_CONFIG_FILES = sorted(ROOT.glob("examples/**/mailstate.yaml"))


def _as_editor_reads_it(value: object) -> object:
    """YAML 1.2 as yaml-language-server reads it: a bare 2026-12-20 is a string there."""
    if isinstance(value, dict):
        return {k: _as_editor_reads_it(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_editor_reads_it(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _validator(which: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "schema" / f"{which}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize(("which", "path"), [
    *(("domain", p) for p in VALID_DOMAIN_FILES), *(("config", p) for p in VALID_CONFIG_FILES)],
    ids=lambda v: str(v.relative_to(ROOT)) if isinstance(v, Path) else v)
def test_project_files_pass_the_shipped_schema(which: str, path: Path) -> None:
    data = _as_editor_reads_it(read_yaml(path).data)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in _validator(which).iter_errors(data)]
    assert not errors, f"{path}: {errors}"


def test_valid_files_found() -> None:
    assert len(VALID_DOMAIN_FILES) > 20 and VALID_CONFIG_FILES


@pytest.mark.parametrize(("which", "data", "where"), [
    ("domain", {"domain": "a.be", "account": "a", "mailboxes": {"a": {
        "name": "A", "password": "{ARGON2ID}x", "quota": "3 apples"}}}, "mailboxes/a/quota"),
    ("domain", {"domain": "a.be", "account": "a", "mailboxes": {"a": {
        "name": "A", "password": "{ARGON2ID}x", "vacation": {
            "subject": "s", "message": "m", "interval": "ten"}}}},
     "mailboxes/a/vacation/interval"),
    ("domain", {"domain": "a.be", "account": "a", "colour": "red"}, ""),
])
def test_shipped_schema_flags_what_validate_refuses(which: str, data: dict[str, object],
                                                    where: str) -> None:
    def paths(errors: object) -> list[str]:
        found = []
        for e in errors:  # type: ignore[attr-defined]
            found += ["/".join(map(str, e.absolute_path)), *paths(e.context)]
        return found

    assert where in paths(_validator(which).iter_errors(data))


KEYWORDS = {"ge", "le", "gt", "lt"}


def _walk(node: object, path: str = "") -> list[tuple[str, dict[str, object]]]:
    found: list[tuple[str, dict[str, object]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found += _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _walk(value, f"{path}/{i}")
    return found


@pytest.mark.parametrize("which", ["domain", "config"])
def test_every_field_has_a_description_and_only_json_schema_keywords(which: str) -> None:
    schema = json.loads((ROOT / "schema" / f"{which}.schema.json").read_text())
    for path, node in _walk(schema):
        assert not KEYWORDS & set(node), f"{path}: {KEYWORDS & set(node)} is not JSON Schema"
        if path.endswith("/properties"):
            for name, field in node.items():
                assert isinstance(field, dict) and field.get("description"), (
                    f"{which}: {path}/{name} has no description")
