"""The whole validation pass: load, resolve, apply the cross-object rules.

Shared by ``validate``, ``plan`` and ``apply`` so that nothing reaches a server unless the
files are valid, and every error of a run is reported at once.
"""

from __future__ import annotations

import os
from pathlib import Path

from mailstate.config import changed_files as changes
from mailstate.config import policy
from mailstate.config.desired import Desired, build
from mailstate.config.file_records import FileRecords
from mailstate.config.locate import find_config
from mailstate.config.repository import load_repository
from mailstate.model.diagnostics import Issue, Problems


def run(paths: list[str], base: str | None = None, changed_by: str | None = None,
        renders: bool = False, cache: bool = False) -> tuple[Desired | None, list[Issue]]:
    """Returns the desired states and all issues (errors and warnings), sorted by position.

    `base` is the revision the change under review started from: files new or changed since
    are blamed for clashes. With `changed_by`, `paths` are the files of the change (deleted
    ones too); the whole repository around them is checked, and each of them must be a
    domain file of that account. With `cache`, a domain file whose bytes were found valid
    before is taken from its record (``file_records``; the result is the same).
    """
    records = FileRecords() if cache else None
    changed: set[Path] | None = None
    try:
        if changed_by is not None:
            # by their path, never resolved through a link (a link is itself refused)
            changed = {Path(os.path.abspath(p)) for p in paths if not Path(p).is_dir()}
            paths = _repository_of(paths)
        repo, issues = load_repository(paths, records)
        links: set[Path] = set()
        if base is not None:
            changed = (changed or set()) | changes.changed_since(repo.root, base)
            if changed_by is not None:
                links = changes.links_since(repo.root, base)
    except Problems as exc:
        return None, exc.issues
    if changed is not None:
        resolved = {p.resolve() for p in changed}
        repo.changed = {doc.path for doc, _ in repo.domains
                        if Path(doc.path).resolve() in resolved}
    if changed_by is not None and changed is not None and not repo.config_failed:
        issues += changes.changed_by(repo, changed_by, changed, base, links)
    if repo.config_failed:  # without a valid mailstate.yaml, every account would be "unknown"
        return None, sorted(set(issues), key=_position)
    desired, found = build(repo)
    issues += found
    issues += policy.check(desired)
    if renders and not any(i.severity == "error" for i in issues):
        issues += _render_refusals(desired)
    issues = sorted(set(issues), key=_position)
    if records is not None:
        records.save()
    if any(i.severity == "error" for i in issues):
        return None, issues
    return desired, issues


def _position(issue: Issue) -> tuple:
    return (issue.path, issue.line or 0, issue.column or 0, issue.message)


def _repository_of(files: list[str]) -> list[str]:
    """The repository (its mailstate.yaml) that the changed files (or a directory) are in."""
    start = Path(files[0]).resolve() if files else Path.cwd()
    while not start.exists():  # a deleted file's folder may be gone too
        start = start.parent
    config = find_config(start)
    if config is None:
        raise Problems([Issue(files[0] if files else ".", None, None, "--changed-by checks a "
                              "repository: no mailstate.yaml at its root (the git top-level); "
                              "run it from the repository")])
    return [str(config)]


def _render_refusals(desired: Desired) -> list[Issue]:
    """What render refuses (the last line of defence before a server) as validate errors."""
    from mailstate.files.render import render
    from mailstate.model.layout import Facts

    where = desired.repo.config_doc.path if desired.repo.config_doc else "."
    issues = []
    for name, state in desired.servers.items():
        try:
            render(state, desired.server_config(name).layout, Facts())
        except ValueError as exc:
            issues.append(Issue(where, None, None, f"server {name!r}: apply would refuse "
                                f"these files: {exc}"))
    return issues
