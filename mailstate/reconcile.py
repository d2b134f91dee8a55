"""One server, one pass: read the live files, parse them, render the desired ones, compare.

The result (``Prepared``) holds both the plan for people and everything apply needs: the
rendered files, the live snapshot they were compared with, and the transport still open.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .desired import STANDALONE_SERVER, Desired
from .layout import Facts, Layout, Rendered
from .parse import parse
from .plan import Change, FieldChange, FileAction, ServerPlan, diff_states
from .render import file_group, render
from .schema import Server
from .transport.base import Snapshot, Transport, TransportError, read_snapshot
from .transport.local import LocalTransport

STANDALONE_ROOT = ".mailstate"


@dataclass
class Prepared:
    plan: ServerPlan
    transport: Transport
    layout: Layout
    config: Server
    rendered: Rendered
    snapshot: Snapshot
    manifest: dict[str, str]  # path -> sha256 of what mailstate last wrote


def target_of(desired: Desired, server: str, override: str | None) -> str:
    if override:
        return override
    config = desired.server_config(server)
    if config.target:
        return config.target
    if desired.repo.standalone or server == STANDALONE_SERVER:
        return f"local:{STANDALONE_ROOT}/{server}"
    raise TransportError(f"server {server!r} has no `target:` in mailstate.yaml; add one or "
                         "give --target")


def open_transport(target: str, config: Server, root: Path, known_hosts: str | None = None,
                   identity: str | None = None) -> Transport:
    if target.startswith("local:"):
        path = Path(target[6:] or ".")
        return LocalTransport(path if path.is_absolute() else Path.cwd() / path)
    if target.startswith("ssh://"):
        from .transport.ssh import SSHTransport

        def rel(p: str | None) -> str | None:
            return str(root / Path(p).expanduser()) if p else None

        return SSHTransport(target, known_hosts=known_hosts or rel(config.known_hosts),
                            identity=identity or rel(config.identity))
    raise TransportError(f"unknown target {target!r}; use local:DIR or ssh://user@host[:port]")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fingerprint(files: dict[str, bytes], settings: dict[str, str]) -> str:
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(f"{path}\0{sha256(files[path])}\n".encode())
    for key in sorted(settings):
        h.update(f"{key}={settings[key]}\n".encode())
    return h.hexdigest()


def prepare(desired: Desired, server: str, transport: Transport) -> Prepared:
    """Read, parse, render and compare one server (one round trip to it)."""
    config = desired.server_config(server)
    layout = config.layout
    snapshot = read_snapshot(transport, layout, Facts())
    manifest_path = f"{layout.state_dir}/manifest.json"
    manifest: dict[str, str] = {}
    if manifest_path in snapshot.files:
        try:
            manifest = json.loads(snapshot.files[manifest_path])["files"]
        except (ValueError, KeyError, TypeError):
            manifest = {}
    live_files = {p: c for p, c in snapshot.files.items() if p != manifest_path}
    state = desired.servers[server]
    rendered = render(state, layout, snapshot.facts)
    wanted = rendered.by_path()

    plan = ServerPlan(server, transport.name)
    if live_files != {p: f.content for p, f in wanted.items()}:
        # Byte-identical files need no parse: render is deterministic and
        # parse(render(s)) == s is property-tested, so the live state is the desired one.
        parsed = parse(live_files, layout, snapshot.facts,
                       known={p: f.content for p, f in wanted.items()})
        # Lines of a file mailstate never wrote (Debian's /etc/default/postgrey on a fresh
        # server) are not news: apply adopts such files. Report only files mailstate owns.
        plan.warnings = [w for w in parsed.warnings if w.split(":", 1)[0] in manifest]
        plan.changes = diff_states(parsed.state, state)
    for path, file in sorted(wanted.items()):
        live = live_files.get(path)
        if live == file.content:
            continue
        reason = "new" if live is None else "changed" if path in manifest else "adopt"
        plan.files.append(FileAction(path, "write", file.service, reason))
    for path in sorted(set(manifest) - set(wanted)):
        if path in live_files:
            group = file_group(path, layout)
            service = "dovecot" if group == "sieve" else group
            plan.files.append(FileAction(path, "remove", service, "changed"))
    for action in plan.files:
        live = live_files.get(action.path)
        if live is not None and action.path in manifest and sha256(live) != manifest[action.path]:
            plan.drift.append(action.path)

    settings = {k: v for k, v in rendered.postfix_settings.items()
                if snapshot.postconf.get(k) != v}
    for key, value in sorted(settings.items()):
        plan.changes.append(Change("change" if key in snapshot.postconf else "add",
                                   "postfix setting", key, None,
                                   [FieldChange(key, snapshot.postconf.get(key), value)],
                                   note="" if key in snapshot.postconf else value))
    services = {a.service for a in plan.files} | ({"postfix"} if settings else set())
    plan.reloads = [s for s in ("postfix", "dovecot", "postgrey") if s in services]
    added = {c.name for c in plan.changes if c.kind == "mailbox" and c.action == "add"}
    plan.welcome = sorted(added & desired.welcome.get(server, set()))
    managed_settings = {k: snapshot.postconf.get(k, "") for k in rendered.postfix_settings}
    plan.live_fingerprint = _fingerprint(live_files, managed_settings)
    plan.desired_fingerprint = _fingerprint({p: f.content for p, f in wanted.items()},
                                            rendered.postfix_settings)
    return Prepared(plan, transport, layout, config, rendered, snapshot, manifest)
