"""The change under review: which files a pull request adds or edits, and whose they are.

Two uses. Blame: when two files claim one name, the error goes to the file that changed
(``validate --base origin/main``), not to the untouched file that happens to sort first.
Tenancy: ``validate --changed-by ACCOUNT`` refuses a change that touches anything but that
account's own domain files (another account's file, ``mailstate.yaml``, CI settings), so a
CI job can hold each customer to its own files even where code owners are not enforced.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from mailstate.config.repository import Repository
from mailstate.config.yaml_reader import Issue, Problems, read_yaml


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=False)
    except OSError as exc:
        raise Problems([Issue(str(root), None, None, f"cannot run git: {exc.strerror}")]) from None
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()[-1:] or ["failed"]
        raise Problems([Issue(str(root), None, None, f"git {args[0]}: {why[0]}")])
    return done.stdout


def changed_since(root: Path, base: str) -> set[Path]:
    """Files added, edited or deleted since the change left `base` (committed or not), and
    untracked files."""
    if base.startswith("-"):
        raise Problems([Issue(str(root), None, None, f"--base {base!r} is not a revision")])
    top = Path(_git(root, "rev-parse", "--show-toplevel").strip())
    try:
        _git(top, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    except Problems:
        raise Problems([Issue(str(root), None, None, f"--base {base!r} is not a revision of "
                              "this repository; fetch it first (e.g. `git fetch origin "
                              "main`)")]) from None
    # from where the change branched off: what the base branch gained since is not the change
    fork = _git(top, "merge-base", base, "HEAD").strip()
    names = _git(top, "diff", "--name-only", "--no-renames", "-z", fork, "--").split("\0")
    names += _git(top, "ls-files", "--others", "--exclude-standard", "-z").split("\0")
    return {(top / n).resolve() for n in names if n}


def account_at(root: Path, base: str, path: Path) -> str | None:
    """The `account:` a file had at `base` (None if it did not exist or says none)."""
    top = Path(_git(root, "rev-parse", "--show-toplevel").strip())
    rel = path.resolve().relative_to(top.resolve()).as_posix()
    try:
        text = _git(top, "show", f"{base}:{rel}")
    except Problems:
        return None
    try:
        account = read_yaml(rel, text).data.get("account")
    except Problems:
        return None
    return account if isinstance(account, str) else None


def changed_by(repo: Repository, account: str, files: set[Path],
               base: str | None) -> list[Issue]:
    """Every changed file must be a domain file of `account`, before and after the change."""
    issues = []
    folder = (repo.root / repo.config.domains).resolve()
    docs = {Path(doc.path).resolve(): (doc, spec) for doc, spec in repo.domains}
    for path in sorted(files):
        shown = _shown(path)
        if folder not in (path.parent, path.parent.parent) or path.suffix not in (".yaml",
                                                                                   ".yml"):
            issues.append(Issue(shown, None, None, f"this change touches {shown}, which is not "
                                f"a domain file of account {account!r}; only the operator "
                                "changes it"))
            continue
        owners = set()
        if path.parent != folder:
            owners.add(path.parent.name)
        if path in docs:
            owners.add(docs[path][1].account)
        if base is not None:
            before = account_at(repo.root, base, path)
            if before is not None:
                owners.add(before)
        others = sorted(owners - {account})
        if others:
            doc = docs.get(path, (None,))[0]
            line, column = doc.where(("account",)) if doc else (None, None)
            issues.append(Issue(shown, line, column, f"this file belongs to account "
                                f"{', '.join(map(repr, others))}; a change by account "
                                f"{account!r} may touch only its own domain files"))
    return issues


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
