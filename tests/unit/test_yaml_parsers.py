"""ruamel.yaml's two parsers, libyaml's (ruamel.yaml.clib, optional) and the pure-Python one,
read every file the project ships or tests with the same data, nodes' positions and issues.
A user without the C extension gets exactly what the tests prove with it."""

from __future__ import annotations

import io
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from mailstate.config.yaml_reader import Problems, has_c_parser, read_yaml

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(
    p for p in [*ROOT.glob("examples/**/*.yaml"), *ROOT.glob("tests/cases/**/*.yaml")]
    if p.stat().st_size < 64 * 1024
)
needs_c = pytest.mark.skipif(not has_c_parser(), reason="ruamel.yaml.clib not installed here")


def outcome(path: Path | str, text: str | None, pure: bool) -> tuple[str, object]:
    try:
        doc = read_yaml(path, text, pure=pure)
    except Problems as exc:
        # libyaml words some syntax errors differently ("did not find expected key"); the
        # position and the kind of error are the same, and those are what is compared.
        return ("problems", [str(i).split("YAML syntax error:")[0] for i in exc.issues])
    return ("data", doc.data)


def test_files_found() -> None:
    assert len(FILES) > 100


@needs_c
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_same_result_both_parsers(path: Path) -> None:
    assert outcome(path, None, pure=True) == outcome(path, None, pure=False)


# What domain files hold: names, addresses, sizes, free text with quotes and newlines.
KEYS = st.text(alphabet=string.ascii_letters + string.digits + "._@+-", min_size=1, max_size=8)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.dates(),
                    st.text(alphabet=string.printable + "éü€", max_size=30))
DATA = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(KEYS, inner, max_size=4), max_leaves=20)


@needs_c
@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, DATA, min_size=1, max_size=5))
def test_same_result_on_generated_documents(data: dict[str, object]) -> None:
    """Block-style documents (what domain files are) read the same both ways. (The two
    implementations differ on some edge cases of plain scalars in flow style, which is why
    the project's own files above, flow lists included, are all compared too.)"""
    writer = YAML(typ="safe", pure=True)
    writer.default_flow_style = False
    out = io.StringIO()
    writer.dump(data, out)
    text = out.getvalue()
    assert outcome("x.yaml", text, pure=True) == outcome("x.yaml", text, pure=False)


@pytest.mark.parametrize("pure", [True, False])
def test_positions_are_kept(pure: bool) -> None:
    doc = read_yaml("x.yaml", "a:\n  b: [1, 2]\n  c: x\n", pure=pure)
    assert doc.where(("a", "c")) == (3, 6)
    assert doc.where(("a", "b", 1)) == (2, 10)


@pytest.mark.parametrize("pure", [True, False])
def test_deep_nesting_refused(pure: bool) -> None:
    with pytest.raises(Problems) as exc:
        read_yaml("x.yaml", "a: " + "[" * 100_000, pure=pure)
    assert "nested more than 32 levels deep" in str(exc.value)


EDGE_CASES = [
    # (text, the one issue expected: "line:col: message fragment")
    ("a: 1\na: [*x]\n", "2:1: duplicate key 'a'"),  # the refused key's value is not read
    ("a: <<\n", "1:4: the YAML tag '!!merge' is not supported"),
    ("<<: {b: 1}\n", "1:1: keys must be plain names"),
    ("? [k, *x]\n: v\n", "1:3: keys must be plain names"),
    ("a: &x [1]\nb: *x\nc: *x\n", "1:4: YAML anchors and aliases"),
    ("a: 1\n---\nb: 2\n", "2:1: YAML syntax error: expected a single document"),
    ("a: !!python/name:os.system x\n", "1:4: the YAML tag '!!python/name:os.system'"),
    ("a: !!map [1, *x]\n", "1:4: the YAML tag '!!map'"),
    ("a: 2024-01-01 10:00:00\n", "1:4: '2024-01-01 10:00:00': write dates as YYYY-MM-DD"),
]


@pytest.mark.parametrize("pure", [True, False])
@pytest.mark.parametrize(("text", "expected"), EDGE_CASES)
def test_refusals_are_reported_once_at_their_place(text: str, expected: str,
                                                   pure: bool) -> None:
    with pytest.raises(Problems) as exc:
        read_yaml("x.yaml", text, pure=pure)
    where, fragment = expected.split(": ", 1)
    assert len(exc.value.issues) == 1, exc.value.issues
    assert str(exc.value.issues[0]).startswith(f"x.yaml:{where}: error: ")
    assert fragment in str(exc.value.issues[0])


@pytest.mark.parametrize("pure", [True, False])
def test_nesting_at_the_limit_is_read(pure: bool) -> None:
    depth = 31  # the root mapping plus 31 lists: 32 levels
    doc = read_yaml("x.yaml", "a: " + "[" * depth + "1" + "]" * depth + "\n", pure=pure)
    value = doc.data["a"]
    for _ in range(depth - 1):
        value = value[0]
    assert value == [1]
    with pytest.raises(Problems, match="nested more than 32"):
        read_yaml("x.yaml", "a: " + "[" * 32 + "1" + "]" * 32 + "\n", pure=pure)
