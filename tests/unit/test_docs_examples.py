"""The documentation's Python examples run as written (docs/library.md), and the site's nav
lists every page in docs/ (mkdocs.yml; `mkdocs build --strict` in CI checks it too)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks(page: Path) -> list[str]:
    return PYTHON_BLOCK.findall(page.read_text(encoding="utf-8"))


def test_the_library_page_has_examples() -> None:
    assert len(python_blocks(DOCS / "library.md")) >= 1


@pytest.mark.parametrize("number", range(len(python_blocks(DOCS / "library.md"))))
def test_a_library_example_runs(number: int, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """In a working directory of its own, with a copy of the repository's examples/."""
    code = python_blocks(DOCS / "library.md")[number]
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILSTATE_CACHE_DIR", str(tmp_path / "cache"))
    exec(compile(code, f"docs/library.md (python block {number + 1})", "exec"), {})
    assert capsys.readouterr().out.strip()


def nav_pages(nav: object) -> set[str]:
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, list):
        return set().union(*(nav_pages(item) for item in nav))
    if isinstance(nav, dict):
        return set().union(*(nav_pages(value) for value in nav.values()))
    return set()


def test_the_nav_lists_every_page() -> None:
    config = YAML(typ="safe").load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert nav_pages(config["nav"]) == pages
