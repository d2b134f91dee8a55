"""Per-file records: a domain file whose bytes did not change is not read or checked again.

Reading a domain file (YAML events to plain data with positions) and checking it against its
schema is most of what validating a large repository costs, and it depends on nothing but the
file's bytes and mailstate's own code: not on ``mailstate.yaml``, not on the other files, not
on where the file is. So a run that found a file valid records its checked model under a name
that is a hash of exactly those (``version()`` and the bytes), and the next run that meets the
same bytes, from any path, on any machine that restored the records (a CI cache), takes the
model from the record instead. What depends on the config and on the other files (the
account's plan, the server, unique names, loops, ...) is worked out on every run, from the
models, exactly as without records.

A recorded file's positions (line and column of each value) are not recorded: when a rule
points at a line in such a file, the file's bytes, kept from the hash, are read again then, so
the message is the same as a full run's. Files with errors are never recorded.

Records are JSON (never code), one per file, in the ``files`` folder beside the plan cache's
(``MAILSTATE_CACHE_DIR`` or ``$XDG_CACHE_HOME/mailstate``). A folder that is not private to
the user (owned by another, writable by group or others), a record file that is not the
user's own or is writable by others, a damaged record and a record of another format are
ignored: the file is read in full as if there were none. ``--no-cache`` reads every file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
import tempfile
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mailstate.config.yaml_reader import MAX_FILE_BYTES, Document, Loc, read_yaml
from mailstate.model import cache_folder

FORMAT = 1
ENV = cache_folder.ENV  # the plan cache's folder setting: records live beside its own
SPARE = 256  # records kept beyond those a run used (other branches' files, for a CI cache)


def cache_dir() -> Path:
    """Where the per-file records are: ``files/`` in the plan cache's folder."""
    return cache_folder.cache_dir() / "files"


_version: str | None = None


def version() -> str:
    """mailstate's own code, pydantic's and ruamel.yaml's versions and the Python: what a
    checked model depends on besides the file's bytes. Another version never matches."""
    global _version
    if _version is None:
        from importlib.metadata import version as installed

        h = hashlib.sha256(f"{FORMAT}\0{sys.version}\0".encode())
        for name in ("pydantic", "pydantic-core", "ruamel.yaml"):
            try:
                h.update(f"{name}={installed(name)}\0".encode())
            except Exception:  # not installed as a distribution: no version
                h.update(f"{name}=?\0".encode())
        package = Path(__file__).resolve().parents[1]
        for path in sorted(package.rglob("*.py")):
            h.update(f"{path.relative_to(package)}\0".encode() + path.read_bytes())
        _version = h.hexdigest()
    return _version


class RecordedDocument(Document):
    """A valid domain file, checked (now or when recorded): no data, and its positions read
    from its bytes only when a message needs one (the same positions a full read has)."""

    def __init__(self, path: str, raw: bytes) -> None:
        super().__init__(path, None, None)
        self._raw: bytes | None = raw

    def where(self, loc: Loc) -> tuple[int | None, int | None]:
        if self._raw is not None:
            self.root = read_yaml(self.path, self._raw.decode("utf-8")).root
            self._raw = None
        return super().where(loc)


class FileRecords:
    """The per-file records of one run: looked up as files are read, saved at the end."""

    def __init__(self) -> None:
        self.folder = cache_dir()
        self.usable = cache_folder.private(self.folder)
        self.used: list[Path] = []
        self.new: dict[str, str] = {}  # record name -> its JSON

    @staticmethod
    def name(raw: bytes) -> str:
        return hashlib.sha256(f"{version()}\0".encode() + raw).hexdigest()

    def _path(self, name: str) -> Path:
        return self.folder / name[:2] / f"{name}.json"

    def recall(self, raw: bytes, model: type[BaseModel]) -> Any | None:
        """The checked model recorded for exactly these bytes, or None."""
        if not self.usable or len(raw) > MAX_FILE_BYTES:
            return None
        name = self.name(raw)
        where = self._path(name)
        try:
            with open(where, "rb") as handle:
                info = os.fstat(handle.fileno())
                if info.st_uid != os.getuid() or info.st_mode & 0o022:
                    return None
                data = json.loads(handle.read())
            if data["format"] != FORMAT or data["name"] != name:
                return None
            found = construct(model, data["model"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        self.used.append(where)
        return found

    def keep(self, raw: bytes, checked: BaseModel) -> None:
        """Record a file found valid (saved by ``save``), when its model comes back equal."""
        dumped = checked.model_dump(mode="json", by_alias=True)
        try:
            if construct(type(checked), dumped) != checked:
                return  # a type this module cannot rebuild: never a record that differs
        except (ValueError, KeyError, TypeError, AttributeError):
            return
        name = self.name(raw)
        self.new[name] = json.dumps({"format": FORMAT, "name": name, "model": dumped})

    def save(self) -> None:
        """Write the new records (atomically, owner-only), keep those used fresh, and remove
        the oldest beyond what this run used plus ``SPARE``. Failures are ignored."""
        if not self.new and not self.used:
            return
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not cache_folder.private(self.folder):
                return
            for name, text in self.new.items():
                where = self._path(name)
                where.parent.mkdir(mode=0o700, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=where.parent, prefix=".record-")
                try:
                    with os.fdopen(fd, "w") as out:
                        out.write(text)
                    os.replace(tmp, where)
                finally:
                    Path(tmp).unlink(missing_ok=True)
            for where in self.used:
                os.utime(where)
            self._prune(len(self.used) + len(self.new) + SPARE)
        except OSError:
            return

    def _prune(self, keep: int) -> None:
        found = list(self.folder.glob("??/*.json"))
        if len(found) <= keep:
            return
        found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for path in found[keep:]:
            path.unlink(missing_ok=True)


def construct(model: type[BaseModel], data: dict) -> BaseModel:
    """A model rebuilt from its own JSON dump without checking it again (it was checked when
    it was recorded; checking twice is not the same as once: ``1G`` became 1073741824)."""
    values = {}
    for name, info in model.model_fields.items():
        values[name] = _value(info.annotation, data[info.alias or name])  # a dump has all
    unknown = set(data) - {info.alias or name for name, info in model.model_fields.items()}
    if unknown:
        raise KeyError(f"unknown keys {sorted(unknown)}")
    return model.model_construct(**values)


def _value(annotation: Any, value: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _value(typing.get_args(annotation)[0], value)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(options) != 1:
            raise TypeError(f"cannot rebuild {annotation}")
        return _value(options[0], value)
    if origin is dict:
        _, item = typing.get_args(annotation)
        return {k: _value(item, v) for k, v in value.items()}
    if origin is list:
        (item,) = typing.get_args(annotation)
        return [_value(item, v) for v in value]
    if origin is typing.Literal:
        return value
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return construct(annotation, value)
    if annotation is dt.date:
        return dt.date.fromisoformat(value)
    if annotation in (str, int, bool, float):
        return value
    raise TypeError(f"cannot rebuild {annotation}")
