"""Finding and loading what a run works on: the repository config and its domain files.

``mailstate validate`` with no argument uses the ``mailstate.yaml`` at the root of the
repository (the git top-level of the working directory); with a directory that is a
repository's root it uses that directory's config (any other is a folder of domain files);
with a domain file alone outside any repository with a config, it needs nothing else
(built-in plans, the file's own account and plan), so that
``mailstate validate examples/monsite.be.yaml`` just works.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mailstate.config.locate import CONFIG_NAME, domain_files, locate, stray_files
from mailstate.model.diagnostics import Issue, Problems

if TYPE_CHECKING:  # the YAML reader and the schema load only when files are read
    from mailstate.config.file_records import FileRecords
    from mailstate.config.yaml_reader import Document
    from mailstate.schema import Config, DomainFile

@dataclass
class Repository:
    """A config plus the domain files it governs."""

    config: Config
    config_doc: Document | None
    root: Path  # relative paths in the config are relative to this directory
    domains: list[tuple[Document, DomainFile]] = field(default_factory=list)
    selected: set[str] = field(default_factory=set)  # domain names the user asked for
    config_failed: bool = False  # mailstate.yaml has errors: cross-file rules would mislead
    folders: dict[str, str] = field(default_factory=dict)  # doc path -> domains/<account>/
    changed: set[str] | None = None  # doc paths new or changed since --base (None: unknown)

    def is_changed(self, doc: Document) -> bool:
        """Whether a file is part of the change under review (every file when unknown)."""
        return self.changed is None or doc.path in self.changed

    @property
    def standalone(self) -> bool:
        return self.config_doc is None


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _renamed(issues: list[Issue], path: Path) -> list[Issue]:
    return [replace(i, path=_relative(path)) for i in issues]


def _stray(path: Path) -> Issue:
    if path.name == CONFIG_NAME:
        return Issue(_relative(path), None, None, f"a {CONFIG_NAME} among the domain files is "
                     "never used: the operator's config is the one at the root of the "
                     "repository; remove this file")
    return Issue(_relative(path), None, None, "not a domain file: only domain files "
                 "(<domain>.yaml) belong in the domains folder and its account folders; move "
                 "it out or remove it")


def load_config(path: Path, issues: list[Issue]) -> Config:
    """Just the config (its defaults where it has errors, which land in `issues`)."""
    return _load_config(path, issues)[0]


def _load_config(path: Path, issues: list[Issue]) -> tuple[Config, Document | None]:
    from mailstate.config.model_check import validate
    from mailstate.config.yaml_reader import MAX_CONFIG_BYTES, read_yaml
    from mailstate.schema import Config

    try:
        doc = read_yaml(path, None, max_bytes=MAX_CONFIG_BYTES)
    except Problems as exc:
        issues.extend(_renamed(exc.issues, path))
        return Config(), None
    doc.path = _relative(path)
    config, found = validate(doc, Config)
    issues.extend(found)
    return (config or Config()), doc


def load_repository(paths: list[str], records: FileRecords | None = None,
                    ) -> tuple[Repository, list[Issue]]:
    """Load config and domain files for the given paths (see module docstring); a file whose
    bytes `records` has is taken from its record (``file_records``)."""
    from mailstate.schema import Config

    issues: list[Issue] = []
    config_path, explicit = locate(paths)
    if config_path is not None:
        config, config_doc = _load_config(config_path, issues)
        config_failed = bool(issues)
        root = config_path.resolve().parent
        folder = root / config.domains
        files = domain_files(folder, nested=True) if folder.is_dir() else []
        if folder.is_dir():
            issues.extend(_stray(path) for path in stray_files(folder, root))
        if config_doc is not None and not folder.is_dir():
            issues.append(config_doc.issue(("domains",),
                                           f"the domains directory {config.domains!r} does "
                                           "not exist"))
    else:
        config, config_doc, root, files = Config(), None, Path.cwd(), []
        config_failed = False

    repo = Repository(config, config_doc, root, config_failed=config_failed)
    seen: set[Path] = set()
    for path in [*explicit, *files]:
        if path.is_symlink() or path.parent.is_symlink():
            # a link could make validate read (and quote in its errors) a file outside the
            # repository, or another account's file under this account's name
            issues.append(Issue(_relative(path), None, None, "a symbolic link; a domain file "
                                "must be a regular file in its folder"))
            continue
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        try:
            doc, model, found = _load_domain_file(path, _relative(path), records)
        except Problems as exc:
            issues.extend(_renamed(exc.issues, path))
            continue
        issues.extend(found)
        if config_path is not None and path.resolve().parent.parent == folder.resolve():
            repo.folders[doc.path] = path.resolve().parent.name
        if model is not None:
            repo.domains.append((doc, model))
            if path in explicit or not explicit:
                repo.selected.add(model.domain)
    return repo, issues



def _load_domain_file(path: Path, name: str, records: FileRecords | None,
                      ) -> tuple[Document, DomainFile | None, list[Issue]]:
    """A domain file's document (named `name`), its checked model (None: it has errors) and
    its issues; from its record when `records` has one for its bytes, else read in full (and
    recorded when valid). Raises Problems for a file that cannot be read as YAML."""
    from mailstate.config.file_records import RecordedDocument
    from mailstate.config.model_check import validate
    from mailstate.config.yaml_reader import MAX_FILE_BYTES, read_yaml
    from mailstate.schema import DomainFile

    try:
        raw: bytes | None = path.read_bytes()
    except OSError:
        raw = None  # the full read below says why
    if raw is not None and records is not None:
        model = records.recall(raw, DomainFile)
        if model is not None:
            return RecordedDocument(name, raw), model, []
    text = None
    if raw is not None and len(raw) <= MAX_FILE_BYTES:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raw = None  # the full read below says where
    doc = read_yaml(path, text)
    doc.path = name
    model, found = validate(doc, DomainFile)
    if model is None or text is None or raw is None:
        doc.data = None  # checked: only the positions are needed from here on
        return doc, model, found
    if records is not None:
        records.keep(raw, model)
    # the position of every value costs ten times the file's bytes in memory: keep the bytes,
    # and read the positions again for the few files a message points into
    return RecordedDocument(name, raw), model, found
