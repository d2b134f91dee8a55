"""A no-op plan without loading the repository: what the same files rendered to last time.

Most plans find nothing to do (CI on every push, a check before an apply, a cron job), and for
a large provider nearly all of their time is CPU spent reading, checking and rendering domain
files that did not change. So a plan that loaded the repository records, per server, the
hashes of the files it rendered and what it rendered them for (the server's facts, main.cf's
settings). The record's name is a hash of every byte the result depends on: mailstate's own
code, the installed libraries, the Python, the working directory, the command's paths,
``mailstate.yaml`` and every domain file (their names, bytes and whether they are links).

The next plan with the same name reads each server as always and, when its managed files have
exactly those hashes, main.cf those settings, the facts are the same and no apply is
unfinished, reports "no changes" straight from the record. Anything else, and the repository is
loaded and the server planned in full from the same read. A record can only ever shorten a
plan to "no changes" for a server that provably matches what those exact files render to;
``apply`` with changes always works from the loaded repository. Only valid repositories are
recorded. The records are JSON (never code) in ``MAILSTATE_CACHE_DIR`` or
``$XDG_CACHE_HOME/mailstate`` (``~/.cache/mailstate``), private to the user; a record that
cannot be read or written is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mailstate.model.cache_folder import ENV as ENV  # the folder's setting, named here too
from mailstate.model.cache_folder import cache_dir, private
from mailstate.model.diagnostics import Issue, Problems

FORMAT = 1
KEEP = 16  # records kept (the newest); one per repository, paths and working directory


_code_digest: str | None = None


def code_digest() -> str:
    """mailstate's own files and the installed distributions: a new version is a new key."""
    global _code_digest
    if _code_digest is None:
        from importlib.resources import files

        h = hashlib.sha256(sys.version.encode())
        package = Path(__file__).resolve().parent
        templates = Path(str(files("mailstate.templates"))).resolve()
        # a wheel has the templates inside the package (read once); the source tree beside it
        for folder in [package] if templates.is_relative_to(package) else [package, templates]:
            h.update(folder_digest(folder).encode())
        for folder in _library_folders():  # a library upgraded in place changes its name
            try:
                names = sorted(n for n in os.listdir(folder) if n.endswith(".dist-info"))
            except OSError:
                continue
            h.update(f"{folder}\0".encode() + "\0".join(names).encode())
        _code_digest = h.hexdigest()
    return _code_digest


def folder_digest(folder: Path) -> str:
    """Every code and template file under `folder`: names and bytes."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".py", ".sh", ".j2", ".in", ".txt") and path.is_file():
            h.update(f"{path.relative_to(folder)}\0".encode() + path.read_bytes())
    return h.hexdigest()


def _library_folders() -> list[str]:
    """Where the libraries mailstate loads are installed (a venv, or Debian's folders)."""
    import sysconfig
    from importlib.util import find_spec

    found = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    for name, up in (("pydantic", 1), ("click", 1), ("ruamel.yaml", 2)):
        spec = find_spec(name)  # found, not imported
        if spec is not None and spec.origin:
            found.add(str(Path(spec.origin).resolve().parents[up]))
    return sorted(found)


def _file_digest(h: hashlib._Hash, path: Path) -> None:
    links = f"{path.is_symlink()}{path.parent.is_symlink()}"
    h.update(f"{path.resolve()}\0{links}\0".encode())
    h.update(path.read_bytes() if path.is_file() else b"\0missing\0")


def record_name(paths: list[str]) -> tuple[str, Path | None] | None:
    """The record's name for these paths here, and the mailstate.yaml they use (None: the
    paths do not make a repository; the full load then says why)."""
    from mailstate.config.locate import locate

    try:
        config, explicit = locate(paths)
    except Problems:
        return None
    h = hashlib.sha256(f"{FORMAT}\0{code_digest()}\0{Path.cwd().resolve()}\0".encode())
    h.update("\0".join(paths).encode() + b"\0\0")
    for path in ([config] if config else []) + explicit:
        _file_digest(h, path)
    return h.hexdigest(), config


def inputs_digest(config: Path | None, domains: str | None, paths: list[str]) -> str:
    """The domain files a load reads from the config's folder `domains` (and the explicit
    ones), hashed: a file added, removed, edited or linked changes it."""
    from mailstate.config.locate import domain_files, stray_files

    h = hashlib.sha256()
    if config is not None and domains is not None:
        folder = config.resolve().parent / domains
        if folder.is_dir():
            for path in domain_files(folder, nested=True):
                _file_digest(h, path)
            for path in stray_files(folder, config.resolve().parent):  # each one an error
                h.update(f"stray\0{path}\0".encode())
        else:
            h.update(b"\0no folder\0")
    return h.hexdigest()


@dataclass
class ServerRecord:
    """What one server's files render to from the recorded inputs, for its recorded facts."""

    facts: dict
    hashes: dict[str, str]  # path -> sha256, every file render wrote
    settings: dict[str, str]  # main.cf settings as rendered
    quotas: list[tuple[str, str, int]]  # (usage key "domain/login", address, quota bytes)
    objects: int  # mailboxes and addresses


@dataclass
class Record:
    """A valid repository's result: its warnings, its run's servers and each server's files."""

    name: str
    inputs: str
    domains: str | None  # mailstate.yaml's `domains:` folder, or None without a config
    issues: list[Issue]
    run_servers: list[str]  # the servers a run of these paths works on
    known_servers: list[str]  # every server of the repository (for --server)
    targets: dict[str, str | None]  # server -> its default target (None: has none)
    configs: dict[str, dict]  # server -> its settings from mailstate.yaml, as JSON
    root: str
    ssh_config: str | None
    servers: dict[str, ServerRecord] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {"format": FORMAT, **{k: v for k, v in self.__dict__.items() if k != "servers"}}
        data["issues"] = [[i.path, i.line, i.column, i.message, i.severity, i.group]
                          for i in self.issues]
        data["servers"] = {n: s.__dict__ for n, s in self.servers.items()}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Record:
        data = json.loads(text)
        if data.pop("format") != FORMAT:
            raise ValueError("another format")
        data["issues"] = [Issue(p, line, col, msg, sev, group)
                          for p, line, col, msg, sev, group in data["issues"]]
        data["servers"] = {n: ServerRecord(**{**s, "quotas": [tuple(q) for q in s["quotas"]]})
                           for n, s in data["servers"].items()}
        return cls(**data)


def load(paths: list[str]) -> Record | None:
    """The record for exactly these inputs, or None."""
    named = record_name(paths)
    if named is None:
        return None
    name, config = named
    folder = cache_dir()
    if not private(folder):
        return None
    try:
        record = Record.from_json((folder / f"{name}.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record.name != name or record.inputs != inputs_digest(config, record.domains, paths):
        return None
    return record


def save(record: Record) -> None:
    """Write a record (atomically, private), keeping the newest KEEP; failures are ignored."""
    folder = cache_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not private(folder):
            return
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".record-")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(record.to_json())
            os.replace(tmp, folder / f"{record.name}.json")
        finally:
            Path(tmp).unlink(missing_ok=True)  # only left when the write failed
        old = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for path in old[KEEP:]:
            path.unlink(missing_ok=True)
    except OSError:
        return


def quota_warnings(quotas: Iterable[tuple[str, str, int]], usage: dict[str, int],
                   thresholds: Iterable[int] = ()) -> list[str]:
    """Mailboxes that already hold more than their (new) quota: Dovecot will refuse mail; and
    those above a quota warning threshold (the highest one crossed)."""
    from mailstate.model.values import format_size, format_size_approx

    out = []
    levels = sorted(thresholds, reverse=True)
    for key, address, quota in quotas:
        used = usage.get(key, 0)
        if quota and used > quota:
            out.append(f"mailbox {address} holds {format_size_approx(used)}, more than its "
                       f"quota {format_size(quota)}: new mail will be refused until it is "
                       "emptied or the quota raised")
            continue
        crossed = next((t for t in levels if quota and used * 100 >= quota * t), None)
        if crossed is not None:
            out.append(f"mailbox {address} holds {format_size_approx(used)}, "
                       f"{used * 100 // quota} % of its quota {format_size(quota)} (above the "
                       f"{crossed} % warning)")
    return out
