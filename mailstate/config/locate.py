"""Which files a run works on, found without reading any of them: the repository's
mailstate.yaml and the domain files named or found in folders (the plan cache names its record
from these before anything is loaded).

The operator's mailstate.yaml is found in one place only: the root of the repository, that is
the outermost folder with a mailstate.yaml from the git top-level of the working directory (or
the working directory itself outside git; or the git top-level of a path given outside it)
down. It is never searched for upwards from a path, so a ``mailstate.yaml`` that a customer
commits into its own folder is never obeyed: a directory given explicitly is a repository only
when no folder above it (within that top) has a config, and a config file found among the
domain files is an error (`stray_files`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from mailstate.model.diagnostics import Issue, Problems

CONFIG_NAME = "mailstate.yaml"


def git_root(start: Path) -> Path | None:
    """The git top-level of the folder `start` (None outside git, or without git)."""
    try:
        done = subprocess.run(["git", "-C", str(start), "rev-parse", "--show-toplevel"],
                              capture_output=True, text=True, check=False)
    except OSError:
        return None
    top = done.stdout.strip()
    return Path(top).resolve() if done.returncode == 0 and top else None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def find_config(start: Path) -> Path | None:
    """The mailstate.yaml of the repository that holds `start` (a folder or a file): the
    outermost one from the repository's top (the working directory's git top-level, or the
    working directory outside git, when `start` is in it; else the git top-level of `start`)
    down to `start`'s folder. The outermost wins, so a customer's folder can never hold the
    config that governs it; None when there is none."""
    target = start.resolve()
    folder = target if target.is_dir() else target.parent
    here = Path.cwd().resolve()
    here = git_root(here) or here
    top = here if _inside(folder, here) else git_root(folder)
    if top is None:
        return None
    for step in [top, *(top / part for part in _steps(folder.relative_to(top)))]:
        candidate = step / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def _steps(rel: Path) -> list[Path]:
    return [Path(*rel.parts[:n]) for n in range(1, len(rel.parts) + 1)]


def _own_config(folder: Path) -> Path | None:
    """The folder's own mailstate.yaml when the folder is a repository root (not a folder of
    a repository whose root has a config: that one is the operator's)."""
    own = folder / CONFIG_NAME
    if not own.is_file():
        return None
    root = find_config(folder)
    if root is None or root.resolve().parent == folder.resolve():
        return own
    return None


def stray_files(folder: Path, root: Path) -> list[Path]:
    """What is in the domains folder or an account folder but is not a domain file (a
    mailstate.yaml there included): the loader would not read it, so it is an error rather
    than something silently ignored. Nothing is said when the domains folder is the root."""
    if folder.resolve() == root.resolve():
        return []
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            if entry.name.startswith("."):
                found.append(entry)
                continue
            found += [p for p in sorted(entry.iterdir()) if not _domain_file(p)]
        elif not _domain_file(entry):
            found.append(entry)
    return found


def _domain_file(path: Path) -> bool:
    return path.suffix in (".yaml", ".yml") and path.name != CONFIG_NAME and (
        path.is_symlink() or path.is_file())


def domain_files(folder: Path, nested: bool = False) -> list[Path]:
    """Domain files of a folder; with `nested`, also of its subfolders one level down (the
    layout ``domains/<account>/<domain>.yaml`` that lets code owners give each customer only
    its own folder)."""
    found = [p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and
             p.name != CONFIG_NAME and p.is_file()]
    if nested:
        found += [p for sub in folder.iterdir() if sub.is_dir() and not sub.name.startswith(".")
                  for p in domain_files(sub)]
    return sorted(found)


def locate(paths: list[str]) -> tuple[Path | None, list[Path]]:
    """The mailstate.yaml and the explicitly named domain files of a run's paths (see the
    module docstring); raises Problems for a path that does not exist or no config at all."""
    issues: list[Issue] = []
    config_path: Path | None = None
    explicit: list[Path] = []
    if not paths:
        config_path = find_config(Path.cwd())
        if config_path is None:
            raise Problems([Issue(".", None, None,
                                  f"no {CONFIG_NAME} at the root of this repository; give a "
                                  "domain file or a directory, e.g. "
                                  "`mailstate validate examples/monsite.be.yaml`")])
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            issues.append(Issue(raw, None, None, "no such file or directory"))
        elif path.is_dir():
            own = _own_config(path)
            if own is not None:
                config_path = own
            else:
                if (path / CONFIG_NAME).exists():
                    issues.append(_planted(path / CONFIG_NAME))
                explicit.extend(domain_files(path))
        elif path.name == CONFIG_NAME:
            if _own_config(path.parent) is None:
                issues.append(_planted(path))
            else:
                config_path = path
        else:
            explicit.append(path)
    if config_path is None and explicit:
        config_path = find_config(explicit[0])
    if issues:
        raise Problems(issues)
    return config_path, explicit


def _planted(path: Path) -> Issue:
    return Issue(str(path), None, None, f"a {CONFIG_NAME} that is not at the root of the "
                 "repository is never used (the operator's config is the one at the root); "
                 "remove this file")
