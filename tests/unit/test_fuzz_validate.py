"""No input makes validation crash: `validate.run` (what the CLI calls) always returns, with
either a result or a list of issues. Also: `mailstate hash-password` makes hashes that verify
and validate."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailstate.cli import main
from mailstate.config.validation import run
from mailstate.config.yaml_reader import Issue, read_yaml
from mailstate.model.passwords import verify_password

from .samples import MINIMAL

REPO = Path(__file__).resolve().parents[2] / "examples" / "repo"
FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def assert_survives(paths: list[str]) -> None:
    desired, issues = run(paths)
    assert all(isinstance(i, Issue) for i in issues)
    if desired is None:
        assert any(i.severity == "error" for i in issues)
    for issue in issues:
        assert "\n" not in str(issue)


def validate_bytes(content: bytes, name: str = "fuzz.yaml") -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        assert_survives([str(path)])


YAMLISH = st.text(alphabet=st.sampled_from(list(":-[]{},#&*!|>'\"?%@.\n\t ab0é\u2028\x00<=~")),
                  max_size=200)


@FAST
@given(st.text(max_size=400))
def test_any_text(text: str) -> None:
    validate_bytes(text.encode("utf-8", "surrogatepass"))


@FAST
@given(st.binary(max_size=400))
def test_any_bytes(data: bytes) -> None:
    validate_bytes(data)


@FAST
@given(YAMLISH)
def test_yaml_punctuation(text: str) -> None:
    validate_bytes(text.encode("utf-8", "surrogatepass"))


@FAST
@given(YAMLISH)
def test_text_appended_to_a_valid_file(text: str) -> None:
    validate_bytes((MINIMAL + text).encode("utf-8", "surrogatepass"))


# ------------------------------------------------------------------ structured mutations

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=False), st.text(max_size=30),
                    st.sampled_from(["3G", "0M", "10m", "-1", "monsite", "monsite0001", "info",
                                     "a@b.be", "münchen.de", "xn--zz.be", "{PLAIN}x", "..",
                                     "a\nb", "light", "maximusconfessor", "2026-01-01",
                                     "9" * 400 + "T", "1.5k", "0.5G", "1h30m", "9" * 30 + "s"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)


def _plain(data):
    """Dates become text so the data can be written as JSON (which is YAML)."""
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data.isoformat() if isinstance(data, dt.date) else data


def _mutate(data, draw, depth: int = 0):
    """Walk to a random place and replace, add or delete something there."""
    if isinstance(data, dict) and data and draw(st.integers(0, 3)) and depth < 6:
        key = draw(st.sampled_from(sorted(data)))
        return {**data, key: _mutate(data[key], draw, depth + 1)}
    if isinstance(data, list) and data and draw(st.booleans()) and depth < 6:
        i = draw(st.integers(0, len(data) - 1))
        return [*data[:i], _mutate(data[i], draw, depth + 1), *data[i + 1:]]
    action = draw(st.sampled_from(["replace", "add", "delete"]))
    if action == "add" and isinstance(data, dict):
        key = draw(st.one_of(st.text(max_size=12), st.sampled_from(sorted(data) or ["x"])))
        return {**data, key: draw(VALUES)}
    if action == "delete" and isinstance(data, dict) and data:
        key = draw(st.sampled_from(sorted(data)))
        return {k: v for k, v in data.items() if k != key}
    return draw(VALUES)


FILES = sorted(p.relative_to(REPO).as_posix() for p in REPO.rglob("*.yaml"))


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_mutated_example_repository(data) -> None:
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "repo"
        shutil.copytree(REPO, copy)
        for _ in range(data.draw(st.integers(1, 3))):
            name = data.draw(st.sampled_from(FILES))
            original = _plain(read_yaml(copy / name).data) if _readable(copy / name) else {}
            mutated = _mutate(original, data.draw)
            (copy / name).write_text(json.dumps(mutated, ensure_ascii=False, indent=1))
        assert_survives([str(copy)])
        assert_survives([str(copy / "domains" / "monsite" / "monsite.be.yaml")])


def _readable(path: Path) -> bool:
    try:
        read_yaml(path)
    except Exception:  # a previous mutation may have made it unreadable; start afresh
        return False
    return True


# ------------------------------------------------------------------ hash-password


def test_hash_password_round_trip(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["hash-password"], input="C0mpl3x P@ss\r\nignored\n")
    assert result.exit_code == 0, result.output
    digest = result.stdout.strip()
    assert digest.startswith("{ARGON2ID}$argon2id$")
    assert verify_password("C0mpl3x P@ss", digest)
    assert not verify_password("C0mpl3x P@ss\r", digest)
    domain = tmp_path / "monsite.be.yaml"
    domain.write_text(MINIMAL.replace(MINIMAL.split('password: "')[1].split('"')[0], digest))
    desired, issues = run([str(domain)])
    assert desired is not None and issues == []


def test_hash_password_refuses_empty() -> None:
    result = CliRunner().invoke(main, ["hash-password"], input="\n")
    assert result.exit_code == 1
    assert "empty password" in result.output
