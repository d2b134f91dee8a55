"""Which files a run works on, found without reading any of them: the repository's
mailstate.yaml and the domain files named or found in folders (the plan cache names its record
from these before anything is loaded)."""

from __future__ import annotations

from pathlib import Path

from mailstate.model.diagnostics import Issue, Problems

CONFIG_NAME = "mailstate.yaml"


def find_config(start: Path) -> Path | None:
    for folder in [start, *start.parents]:
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


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
                                  f"no {CONFIG_NAME} here or in a parent directory; give a "
                                  "domain file or a directory, e.g. "
                                  "`mailstate validate examples/monsite.be.yaml`")])
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            issues.append(Issue(raw, None, None, "no such file or directory"))
        elif path.is_dir():
            if (path / CONFIG_NAME).is_file():
                config_path = path / CONFIG_NAME
            else:
                explicit.extend(domain_files(path))
        elif path.name == CONFIG_NAME:
            config_path = path
        else:
            explicit.append(path)
    if config_path is None and explicit:
        config_path = find_config(explicit[0].resolve().parent)
    if issues:
        raise Problems(issues)
    return config_path, explicit
