"""The import's YAML writer: whatever it writes, YAML reads back as the same data."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from mailstate.importer import yaml_writer as yamlout

TRICKY = ["yes", "No", "on", "null", "~", "1.5", "1e3", "0x1F", "0o17", "12:30", "2026-01-01",
          " lead", "trail ", "a: b", "a #b", "{x}", "[x]", "*a", "&a", "!t", "%x", "@x", "`x",
          "'q", '"q', "-", "-x", "?x", ",x", "|x", ">x", "=", "é", "two words", ".inf",
          "line\nline\n", "\ttab\n", "x\n\n", "x\n", "\nx\n", "a\rb", "back\\slash", ""]


def _back(data: dict) -> object:
    return YAML(typ="safe").load(yamlout.dump(data))


def test_tricky_values_read_back_unchanged() -> None:
    data = {"text": TRICKY, "n": 3, "off": False, "day": dt.date(2027, 1, 5), "none": None,
            "empty": [], "nested": {"a": {"b": ["c"]}},
            "flow": yamlout.Flow({"home": "/home/x", "uid": 20001})}
    assert _back(data) == {**data, "flow": {"home": "/home/x", "uid": 20001}}
    for value in TRICKY:
        assert _back({"message": value}) == {"message": value}, repr(value)
        assert _back({value or "k": 1}) == {value or "k": 1}, repr(value)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")))
def test_any_text_reads_back_unchanged(value: str) -> None:
    assert _back({"k": value, "l": [value]}) == {"k": value, "l": [value]}
