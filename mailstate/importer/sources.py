"""One face for both sources of an import: a server mailstate manages (its own files read
back) and a server Virtualmin configured. Both read the server in one round trip, convert,
and write YAML with ``yaml_writer``; nothing is written when reading fails."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mailstate.model.values import check_login

SOURCES = ("mailstate", "virtualmin")


class ImportRefused(ValueError):
    """The import cannot start as asked (a bad name, no target, an output folder in use)."""


@dataclass
class Imported:
    """What an import wrote: file -> account (None for mailstate.yaml), the warnings (what
    could not be carried), the target read, and whether a repository's mailstate.yaml holds
    the accounts and plans (a mailstate import into an existing repository)."""

    written: dict[Path, str | None]
    warnings: list[str]
    target: str
    in_repository: bool = False
    domains: int = 0
    mailboxes: int = 0
    source: str = "mailstate"
    accounts: list[str] = field(default_factory=list)


def import_server(out: str | Path, *, source: str = "mailstate", target: str | None = None,
                  server: str = "imported", account: str | None = None,
                  known_hosts: str | None = None, identity: str | None = None,
                  config_path: str | Path | None = None) -> Imported:
    """Write domain files for what a live server holds.

    ``source="mailstate"``: one domain file per domain of mailstate's own files, into `out`;
    the server's settings and default target come from the repository's ``mailstate.yaml``
    at `config_path`, if given. ``source="virtualmin"``: a new repository in `out`
    (``mailstate.yaml`` and ``domains/``). Raises ``ImportRefused``, ``Invalid`` (a bad
    repository) or ``TransportError``.
    """
    if source not in SOURCES:
        raise ImportRefused(f"unknown source {source!r} (one of {', '.join(SOURCES)})")
    try:
        check_login(server)
        if account:
            check_login(account)
    except ValueError as exc:
        raise ImportRefused(str(exc)) from None
    if source == "virtualmin":
        return _from_virtualmin(Path(out), target, server, account, known_hosts, identity)
    return _from_mailstate(Path(out), target, server, account, known_hosts, identity,
                           Path(config_path) if config_path else None)


def _from_mailstate(out: Path, target: str | None, server: str, account: str | None,
                    known_hosts: str | None, identity: str | None,
                    config_path: Path | None) -> Imported:
    from mailstate.config.validation import run as validate
    from mailstate.engine.prepare import open_transport
    from mailstate.files.parse import parse
    from mailstate.fleet import Invalid
    from mailstate.importer.mailstate_files import import_state
    from mailstate.model.layout import Facts
    from mailstate.schema import Server
    from mailstate.server.read import read_snapshot

    config, root, ssh_config = Server(), Path.cwd(), None
    if config_path is not None:
        desired, issues = validate([str(config_path.parent)])
        if desired is None:
            raise Invalid(issues)
        config, root = desired.server_config(server), desired.repo.root
        ssh_config = desired.repo.config.ssh_config
    target = target or config.target
    if not target:
        raise ImportRefused("give --target (or a server with a target in mailstate.yaml)")
    transport = open_transport(target, config, root, known_hosts, identity,
                               ssh_config=ssh_config)
    try:
        snapshot = read_snapshot(transport, config.layout, Facts())
    finally:
        transport.close()
    records = {f"{config.layout.state_dir}/manifest.json", f"{config.layout.state_dir}/state.json"}
    parsed = parse({p: c for p, c in snapshot.files.items() if p not in records},
                   config.layout, snapshot.facts)
    written = import_state(parsed.state, server, out, account,
                           with_plan=config_path is None)
    return Imported(dict(written), list(parsed.warnings), target, config_path is not None,
                    domains=len(parsed.state.domains),
                    mailboxes=sum(len(d.mailboxes) for d in parsed.state.domains.values()),
                    accounts=sorted(set(written.values())))


def _from_virtualmin(out: Path, target: str | None, server: str, account: str | None,
                     known_hosts: str | None, identity: str | None) -> Imported:
    from mailstate.engine.prepare import open_transport
    from mailstate.importer.output import write
    from mailstate.importer.virtualmin.convert import import_server as convert_server
    from mailstate.schema import Server

    if account:
        raise ImportRefused("--account does not go with --from virtualmin: each Virtualmin "
                            "owner becomes its own account")
    if not target:
        raise ImportRefused("give --target: the Virtualmin server, ssh://root@HOST or "
                            "local:DIR")
    if out.exists() and any(out.iterdir()):
        raise ImportRefused(f"{out} is not empty; give a new directory for the imported "
                            "repository")
    transport = open_transport(target, Server(), Path.cwd(), known_hosts, identity)
    try:
        imported = convert_server(transport, server, target)
    finally:
        transport.close()
    server_config = imported.config["servers"][server]  # type: ignore[index]
    for key, value in (("known_hosts", known_hosts), ("identity", identity)):
        if value:
            server_config[key] = os.path.abspath(value)
    written = write(imported, out, target)
    boxes = sum(len(d.get("mailboxes", {})) for d in imported.domains.values())  # type: ignore[arg-type]
    return Imported({p: None for p in written}, list(imported.warnings), target, True,
                    domains=len(imported.domains), mailboxes=boxes, source="virtualmin")
