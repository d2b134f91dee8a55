"""The whole validation pass: load, resolve, apply the cross-object rules.

Shared by ``validate``, ``plan`` and ``apply`` so that nothing reaches a server unless the
files are valid, and every error of a run is reported at once.
"""

from __future__ import annotations

from . import policy
from .desired import Desired, build
from .load import Issue, Problems
from .repo import load_repository


def run(paths: list[str]) -> tuple[Desired | None, list[Issue]]:
    """Returns the desired states and all issues (errors and warnings), sorted by position."""
    try:
        repo, issues = load_repository(paths)
    except Problems as exc:
        return None, exc.issues
    if repo.config_failed:  # without a valid mailstate.yaml, every account would be "unknown"
        return None, sorted(set(issues), key=_position)
    desired, found = build(repo)
    issues += found
    issues += policy.check(desired)
    issues = sorted(set(issues), key=_position)
    if any(i.severity == "error" for i in issues):
        return None, issues
    return desired, issues


def _position(issue: Issue) -> tuple:
    return (issue.path, issue.line or 0, issue.column or 0, issue.message)
