"""The change under review: which files a pull request adds or edits, and whose they are.

Two uses. Blame: when two files claim one name, the error goes to the file that changed
(``validate --base origin/main``), not to the untouched file that happens to sort first.
Tenancy: ``validate --changed-by ACCOUNT`` refuses a change that touches anything but that
account's own domain files (another account's file, ``mailstate.yaml``, CI settings), so a
CI job can hold each customer to its own files even where code owners are not enforced.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mailstate.config.locate import CONFIG_NAME
from mailstate.config.repository import Repository
from mailstate.config.yaml_reader import Issue, Problems, read_yaml

LINK_MODES = ("120000", "160000")  # a symbolic link, a submodule: never a domain file


def _git_bytes(root: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False)
    except OSError as exc:
        raise Problems([Issue(str(root), None, None, f"cannot run git: {exc.strerror}")]) from None
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace")
        why = stderr.strip().splitlines()[-1:] or ["failed"]
        raise Problems([Issue(str(root), None, None, f"git {args[0]}: {why[0]}")])
    return done.stdout


def _git(root: Path, *args: str) -> str:
    return _git_bytes(root, *args).decode("utf-8", "replace")


def _names(root: Path, raw: bytes) -> list[str]:
    """NUL-separated file names from git; a name that is not UTF-8 is a clear error."""
    names = []
    for name in raw.split(b"\0"):
        if not name:
            continue
        try:
            names.append(name.decode("utf-8"))
        except UnicodeDecodeError:
            shown = name.decode("utf-8", "backslashreplace")
            raise Problems([Issue(shown, None, None, "this change has a file whose name is not "
                                  "UTF-8; rename it (domain files are named <domain>.yaml)")]
                           ) from None
    return names


def _top(root: Path) -> Path:
    return Path(_git(root, "rev-parse", "--show-toplevel").strip())


def _fork(root: Path, base: str) -> tuple[Path, str]:
    if base.startswith("-"):
        raise Problems([Issue(str(root), None, None, f"--base {base!r} is not a revision")])
    top = _top(root)
    try:
        _git(top, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    except Problems:
        raise Problems([Issue(str(root), None, None, f"--base {base!r} is not a revision of "
                              "this repository; fetch it first (e.g. `git fetch origin "
                              "main`)")]) from None
    # from where the change branched off: what the base branch gained since is not the change
    return top, _git(top, "merge-base", base, "HEAD").strip()


def changed_since(root: Path, base: str) -> set[Path]:
    """Files added, edited or deleted since the change left `base` (committed or not), and
    untracked files, by their path in the repository (links are not resolved)."""
    top, fork = _fork(root, base)
    names = _names(top, _git_bytes(top, "diff", "--name-only", "--no-renames", "-z", fork, "--"))
    names += _names(top, _git_bytes(top, "ls-files", "--others", "--exclude-standard", "-z"))
    return {top / n for n in names}


def links_since(root: Path, base: str) -> set[Path]:
    """Files of the change that are (or were, at `base`) symbolic links or submodules, by
    their git mode (120000, 160000)."""
    top, fork = _fork(root, base)
    fields = _git_bytes(top, "diff", "--raw", "--no-renames", "-z", fork, "--").split(b"\0")
    found = set()
    for meta, name in zip(fields[0::2], fields[1::2], strict=False):
        modes = meta.decode("ascii", "replace").lstrip(":").split()[:2]
        if any(m in LINK_MODES for m in modes):
            found.add(top / _names(top, name)[0])
    return found


def account_at(root: Path, base: str, path: Path) -> str | None:
    """The `account:` a file had at `base` (None if it did not exist or says none)."""
    top = _top(root)
    rel = _in_repository(path, top.resolve())
    if rel is None:
        return None
    try:
        text = _git(top, "show", f"{base}:{rel}")
    except Problems:
        return None
    try:
        account = read_yaml(rel, text).data.get("account")
    except Problems:
        return None
    return account if isinstance(account, str) else None


def _in_repository(path: Path, top: Path) -> str | None:
    """`path`'s path in the repository whose (resolved) top-level is `top`, found without
    resolving anything inside the repository (None: not in it)."""
    absolute = Path(os.path.abspath(path))
    for above in reversed([absolute, *absolute.parents]):
        if above == top or (above.exists() and above.resolve() == top):
            return absolute.relative_to(above).as_posix()
    return None


def _linked(top: Path, rel: str) -> bool:
    """Whether any part of `rel` below `top` is a symbolic link in the working tree."""
    here = top
    for part in Path(rel).parts:
        here = here / part
        if here.is_symlink():
            return True
    return False


def changed_by(repo: Repository, account: str, files: set[Path], base: str | None,
               links: set[Path] | None = None) -> list[Issue]:
    """Every changed file must be a domain file of `account`, before and after the change:
    judged by its path in git (never resolved through a link); a link anywhere in the change
    (git mode 120000, or a link in the working tree), and any file the loader would not read
    as a domain file (a mailstate.yaml included), are refused."""
    issues = []
    try:
        top = _top(repo.root).resolve()
    except Problems:
        top = repo.root.resolve()
    folder = _in_repository(repo.root / repo.config.domains, top)
    docs = {Path(doc.path).resolve(): (doc, spec) for doc, spec in repo.domains}
    linked = {_in_repository(p, top) for p in links or set()}
    for path in sorted(files):
        shown = _shown(path)
        rel = _in_repository(path, top)
        inner = _below(rel, folder)
        if rel is not None and (rel in linked or _linked(top, rel)):
            issues.append(Issue(shown, None, None, f"this change makes {shown} a symbolic link "
                                "(or changes one); a change may hold only regular domain "
                                "files: commit the file itself"))
            continue
        if not inner or len(inner) > 2 or inner[-1] == CONFIG_NAME or \
                Path(inner[-1]).suffix not in (".yaml", ".yml") or \
                any(p.startswith(".") for p in inner):
            issues.append(Issue(shown, None, None, f"this change touches {shown}, which is not "
                                f"a domain file of account {account!r}; only the operator "
                                "changes it"))
            continue
        owners = set()
        if len(inner) == 2:
            owners.add(inner[0])
        if path.resolve() in docs:
            owners.add(docs[path.resolve()][1].account)
        if base is not None:
            before = account_at(repo.root, base, path)
            if before is not None:
                owners.add(before)
        others = sorted(owners - {account})
        if others:
            doc = docs.get(path.resolve(), (None,))[0]
            line, column = doc.where(("account",)) if doc else (None, None)
            issues.append(Issue(shown, line, column, f"this file belongs to account "
                                f"{', '.join(map(repr, others))}; a change by account "
                                f"{account!r} may touch only its own domain files"))
    return issues


def _below(rel: str | None, folder: str | None) -> tuple[str, ...]:
    """The parts of `rel` below the domains folder `folder` (empty: not below it)."""
    if rel is None or folder is None:
        return ()
    if folder == ".":
        return Path(rel).parts
    if not rel.startswith(folder + "/"):
        return ()
    return Path(rel[len(folder) + 1:]).parts


def _shown(path: Path) -> str:
    try:
        return str(Path(os.path.abspath(path)).relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
