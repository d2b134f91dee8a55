"""`plan` prints a checksum; `apply --checksum SUM` applies that plan or nothing.

On the local target: the checksum is stable for the same inputs, a merge applies exactly
what was reviewed, and a refusal says whether the domain files or the server changed (and,
with the reviewed plan's JSON, which lines differ), leaving every file as it was.
"""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import EXAMPLE, LocalServer

CHECKSUM = re.compile(r"Plan checksum: (ms1:[0-9a-f]{8}:[0-9a-f]{32})")


def planned(server: LocalServer, path: Path, *extra: str) -> str:
    result = server.cli("plan", str(path), *extra)
    assert result.exit_code == 0, result.output
    match = CHECKSUM.search(result.stdout)
    assert match, result.stdout
    return match.group(1)


def test_the_checksum_is_stable_and_differs_for_a_different_plan(server: LocalServer) -> None:
    path = server.example()
    first = planned(server, path)
    assert planned(server, path) == first
    other = server.domain(EXAMPLE.read_text().replace("quota: 3G", "quota: 2G"), "other.yaml")
    assert planned(server, other) != first
    md = server.cli("plan", str(path), "--format", "markdown").stdout
    assert f"`mailstate apply --checksum {first}`" in md


def test_apply_with_the_reviewed_checksum_applies(server: LocalServer) -> None:
    path = server.example()
    checksum = planned(server, path)
    result = server.cli("apply", str(path), "--checksum", checksum)  # no terminal, no prompt
    assert result.exit_code == 0, result.output
    assert "Apply complete." in result.stdout
    assert server.cli("plan", str(path), "--detailed-exitcode").exit_code == 0


def test_changed_domain_files_are_refused_with_what_differs(server: LocalServer) -> None:
    path = server.example()
    server.apply(path)
    path.write_text(EXAMPLE.read_text().replace("quota: 3G", "quota: 2G"))
    reviewed = server.work / "plan.json"
    checksum = planned(server, path, "--out", str(reviewed))
    path.write_text(EXAMPLE.read_text().replace("quota: 3G", "quota: 1G"))  # pushed after review
    before = server.contents()
    result = server.cli("apply", str(path), "--checksum", checksum, "--plan", str(reviewed))
    assert result.exit_code == 1
    assert "the domain files (or mailstate.yaml) are not the ones that plan was made from" \
        in result.stderr
    assert "-        quota: 3G -> 2G" in result.stderr and "+        quota: 3G -> 1G" \
        in result.stderr
    assert "Nothing was changed" in result.stderr
    assert server.contents() == before


def test_a_server_changed_since_the_review_is_refused(server: LocalServer) -> None:
    path = server.example()
    checksum = planned(server, path)
    server.apply(path)  # someone applied in between
    result = server.cli("apply", str(path), "--checksum", checksum)
    assert result.exit_code == 1
    assert "the servers changed since the plan was made" in result.stderr
    assert "was it applied already?" in result.stderr


def test_a_malformed_checksum_is_refused(server: LocalServer) -> None:
    path = server.example()
    before = server.contents()
    result = server.cli("apply", str(path), "--checksum", "sha256:abc")
    assert result.exit_code == 1 and "is not a plan checksum" in result.stderr
    assert server.contents() == before


def test_show_prints_a_saved_plan_in_every_format_with_the_same_checksum(
        server: LocalServer) -> None:
    path = server.example()
    saved = server.work / "plan.json"
    checksum = planned(server, path, "--out", str(saved))
    for fmt in ("text", "markdown", "json"):
        shown = server.cli("show", str(saved), "--format", fmt, target=False)
        assert shown.exit_code == 0, shown.output
        assert checksum in shown.stdout
        fresh = server.cli("plan", str(path), "--format", fmt)
        assert shown.stdout == fresh.stdout
    bad = server.cli("show", str(path), target=False)  # a YAML file is not a plan
    assert bad.exit_code == 1 and "not a mailstate plan file" in bad.stderr
