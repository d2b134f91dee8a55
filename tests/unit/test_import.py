"""`mailstate import`: a server's files back to domain files that plan to no change.

Every domain file of the plan cases (tests/cases/plan/*/domain.yaml, which together use every
feature) is applied to a local target, imported back, and the imported files are planned
against the same target: no change may show. The written files must also read like a person's:
defaults left out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.conftest import LocalServer

CASES = Path(__file__).resolve().parents[1] / "cases" / "plan"
DOMAIN_FILES = sorted(CASES.glob("*/domain.yaml"))


@pytest.mark.parametrize("source", DOMAIN_FILES, ids=lambda p: p.parent.name)
def test_import_then_plan_shows_no_changes(server: LocalServer, source: Path) -> None:
    path = server.domain(source.read_text())
    assert server.cli("apply", str(path), "--auto-approve").exit_code == 0
    out = server.work / "imported"
    result = server.cli("import", "--server", "maximusconfessor", "--out", str(out))
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.yaml"))
    assert files, result.output
    plan = server.cli("plan", *map(str, files), "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    assert "No changes" in plan.output


def test_imported_file_leaves_defaults_out(server: LocalServer) -> None:
    server.apply(server.example())
    out = server.work / "imported"
    assert server.cli("import", "--server", "maximusconfessor", "--out", str(out)).exit_code == 0
    text = (out / "monsite.be.yaml").read_text()
    assert "account: monsite" in text and "plan: recommended" in text
    assert "quota:" not in text  # 3G is the default
    assert "role_aliases" not in text and "abuse" not in text  # made automatically
    assert "interval" not in text  # 10m is the default
    assert "message: |" in text  # multi-line text stays readable


def test_import_needs_a_target_and_refuses_a_bad_server_name(server: LocalServer) -> None:
    out = str(server.work / "imported")
    missing = server.cli("import", "--out", out, target=False)
    assert missing.exit_code == 1 and "--target" in missing.output
    bad = server.cli("import", "--server", "../etc", "--out", out)
    assert bad.exit_code == 1 and "login" in bad.output
