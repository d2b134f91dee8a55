"""One server, one pass: read the live files, parse them, render the desired ones, compare.

The result (``Prepared``) holds both the plan for people and everything apply needs: the
rendered files, the live snapshot they were compared with, and the transport still open.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mailstate.guards.plan_cache import ServerRecord, quota_warnings
from mailstate.model.layout import Facts, Layout, Rendered, RenderedFile
from mailstate.plan import Action, Change, FieldChange, FileAction, Kind, ServerPlan
from mailstate.server.local import LocalTransport
from mailstate.server.read import Snapshot, read_snapshot
from mailstate.server.transport import Transport, TransportError

if TYPE_CHECKING:  # the full plan's modules load only when a server is planned in full
    from mailstate.config.desired import Desired, ServerIntent
    from mailstate.model.state import ServerState
    from mailstate.schema import Server

STANDALONE_ROOT = ".mailstate"


@dataclass
class Prepared:
    plan: ServerPlan
    transport: Transport
    layout: Layout
    config: Server
    rendered: Rendered | None  # None: planned from the plan cache, nothing to change
    snapshot: Snapshot
    manifest: dict[str, str]  # path -> sha256 of what mailstate last wrote
    live_hashes: dict[str, str]  # path -> sha256 of each managed file as read
    wanted_hashes: dict[str, str]  # path -> sha256 of each file as rendered
    settings: dict[str, str]  # main.cf settings that differ from the live ones
    notices: dict[str, tuple[str, str]]  # new domain -> (account, contact) to tell


def _quotas(state: ServerState) -> list[tuple[str, str, int]]:
    """(usage key, address, quota) of every mailbox, for the quota warnings."""
    return [(f"{b.domain}/{b.login}", f"{b.login}@{b.domain}", b.quota)
            for b in state.mailboxes().values()]


def _manifest(data: bytes | None) -> tuple[dict[str, str], str | None]:
    """The last apply's file hashes and generation id (empty when absent or damaged)."""
    try:
        record = json.loads(data or b"{}")
        return dict(record["files"]), str(record["generation"])
    except (ValueError, KeyError, TypeError):
        return {}, None


def live_generation(prep: Prepared) -> str | None:
    """The id of the apply that wrote the live files (from the manifest), if recorded."""
    layout = prep.layout
    return _manifest(prep.snapshot.files.get(f"{layout.state_dir}/manifest.json"))[1]


def _live_files(snapshot: Snapshot, layout: Layout) -> dict[str, bytes]:
    """The managed files as read, without mailstate's own records."""
    records = {f"{layout.state_dir}/manifest.json", f"{layout.state_dir}/state.json"}
    return {p: c for p, c in snapshot.files.items() if p not in records}


def _recorded_state(data: bytes | None, generation: str | None) -> ServerState | None:
    """The state the last apply recorded, if it belongs to the same apply as the manifest."""
    from mailstate.model.state import ServerState

    try:
        record = json.loads(data or b"{}")
        if generation is None or record.get("generation") != generation:
            return None
        return ServerState.model_validate(record["state"])
    except (ValueError, KeyError, TypeError):
        return None


def target_of(desired: Desired, server: str, override: str | None) -> str:
    from mailstate.config.desired import STANDALONE_SERVER

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
                   identity: str | None = None, ssh_config: str | None = None) -> Transport:
    """Connect to a target; `ssh_config` (relative to the repository) replaces ~/.ssh/config."""
    if target.startswith("local:"):
        path = Path(target[6:] or ".")
        return LocalTransport(path if path.is_absolute() else Path.cwd() / path)
    if target.startswith("ssh://"):
        from mailstate.server.ssh import SSHTransport

        def rel(p: str | None) -> str | None:
            return str(root / Path(p).expanduser()) if p else None

        return SSHTransport(target, known_hosts=known_hosts or rel(config.known_hosts),
                            identity=identity or rel(config.identity),
                            ssh_config=rel(ssh_config))
    raise TransportError(f"unknown target {target!r}; use local:DIR or ssh://user@host[:port]")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fingerprint(hashes: dict[str, str], settings: dict[str, str]) -> str:
    h = hashlib.sha256()
    for path in sorted(hashes):
        h.update(f"{path}\0{hashes[path]}\n".encode())
    for key in sorted(settings):
        h.update(f"{key}={settings[key]}\n".encode())
    return h.hexdigest()


def prepare(intent: ServerIntent, transport: Transport,
            snapshot: Snapshot | None = None) -> Prepared:
    """Read (unless `snapshot` was), parse, render and compare one server (one round trip)."""
    from mailstate.files.render import render

    layout = intent.config.layout
    snapshot = snapshot or read_snapshot(transport, layout, Facts())
    manifest, generation = _manifest(snapshot.files.get(f"{layout.state_dir}/manifest.json"))
    live_files = _live_files(snapshot, layout)
    rendered = render(intent.state, layout, snapshot.facts)
    wanted = rendered.by_path()
    wanted_files = {p: f.content for p, f in wanted.items()}
    live_hashes = {p: sha256(c) for p, c in live_files.items()}
    wanted_hashes = {p: sha256(c) for p, c in wanted_files.items()}

    plan = ServerPlan(intent.server, transport.name)
    recorded = _recorded_state(snapshot.files.get(f"{layout.state_dir}/state.json"),
                               generation) if live_hashes == manifest else None
    live_state = _compare(plan, intent.state, live_files, wanted_files, recorded, manifest,
                          layout, snapshot.facts)
    plan.live_objects = sum(len(d.mailboxes) + len(d.aliases)
                            for d in live_state.domains.values())
    _file_actions(plan, wanted, live_files, live_hashes, manifest, layout)
    settings = {k: v for k, v in rendered.postfix_settings.items()
                if snapshot.postconf.get(k) != v}
    services = _server_changes(plan, settings, snapshot)
    plan.warnings += quota_warnings(_quotas(intent.state), snapshot.usage,
                                    intent.state.quota_warnings.thresholds)
    plan.reloads = [s for s in ("postfix", "dovecot", "postgrey") if s in services]
    added = {c.name for c in plan.changes if c.kind == Kind.MAILBOX and c.action == Action.ADD}
    plan.welcome = sorted(added & intent.welcome)
    new_domains = {c.name for c in plan.changes if c.kind == Kind.DOMAIN and c.action == Action.ADD}
    notices = {d: who for d, who in intent.contacts.items() if d in new_domains}
    plan.notices = sorted(notices)
    managed_settings = {k: snapshot.postconf.get(k, "") for k in rendered.postfix_settings}
    plan.live_fingerprint = _fingerprint(live_hashes, managed_settings)
    plan.desired_fingerprint = _fingerprint(wanted_hashes, rendered.postfix_settings)
    return Prepared(plan, transport, layout, intent.config, rendered, snapshot, manifest,
                    live_hashes, wanted_hashes, settings, notices)


def _compare(plan: ServerPlan, state: ServerState, live_files: dict[str, bytes],
             wanted_files: dict[str, bytes], recorded: ServerState | None,
             manifest: dict[str, str], layout: Layout, facts: Facts) -> ServerState:
    """The plan's object changes and routing; returns the live state they were made from."""
    from mailstate.files.parse import parse
    from mailstate.model.routing import route_changes
    from mailstate.plan import diff_states

    if live_files == wanted_files:
        return state  # byte-identical: render is deterministic, parse(render(s)) == s is tested
    if recorded is not None:
        # Every managed file is exactly what the last apply wrote (hashes in the manifest),
        # so the live state is the state that apply recorded: no need to parse it back.
        live = recorded
    else:
        parsed = parse(live_files, layout, facts, known=wanted_files)
        # Lines of a file mailstate never wrote (Debian's /etc/default/postgrey on a fresh
        # server) are not news: apply adopts such files. Report only files mailstate owns.
        plan.warnings = [w for w in parsed.warnings if w.split(":", 1)[0] in manifest]
        live = parsed.state
    plan.changes = diff_states(live, state)
    plan.routing = route_changes(live, state)
    return live


def _file_actions(plan: ServerPlan, wanted: dict[str, RenderedFile],
                  live_files: dict[str, bytes], live_hashes: dict[str, str],
                  manifest: dict[str, str], layout: Layout) -> None:
    """The files to write and remove, and which of them were edited by hand (drift)."""
    from mailstate.files.render import file_group

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
        live_hash = live_hashes.get(action.path)
        if live_hash is not None and manifest.get(action.path, live_hash) != live_hash:
            plan.drift.append(action.path)


def _server_changes(plan: ServerPlan, settings: dict[str, str], snapshot: Snapshot) -> set[str]:
    """main.cf settings, an unfinished apply, a postgrey running other settings; returns the
    services to reload."""
    for key, value in sorted(settings.items()):
        plan.changes.append(Change(Action.CHANGE if key in snapshot.postconf else Action.ADD,
                                   Kind.POSTFIX_SETTING, key, None,
                                   [FieldChange(key, snapshot.postconf.get(key), value)],
                                   note="" if key in snapshot.postconf else value))
    services = {a.service for a in plan.files} | ({"postfix"} if settings else set())
    if snapshot.journal:
        plan.changes.append(Change(Action.CHANGE, Kind.UNFINISHED_APPLY, snapshot.journal,
                                   note="an earlier apply was interrupted; the next apply "
                                   "completes or undoes it first"))
    if snapshot.postgrey:  # the daemon runs other settings than its file: restart it
        plan.changes.append(Change(Action.CHANGE, Kind.DAEMON, "postgrey",
                                   note=f"{snapshot.postgrey}; apply restarts it"))
        services.add("postgrey")
    return services


def record_of(intent: ServerIntent, prep: Prepared) -> ServerRecord:
    """What the plan cache keeps of a fully prepared server (see ``plan_cache``)."""
    state = intent.state
    return ServerRecord(prep.snapshot.facts.model_dump(mode="json"), prep.wanted_hashes,
                        dict(prep.rendered.postfix_settings), _quotas(state),
                        sum(len(d.mailboxes) + len(d.aliases) for d in state.domains.values()))


def prepare_unchanged(record: ServerRecord, server: str, config: Server, transport: Transport,
                      snapshot: Snapshot) -> Prepared | None:
    """The plan of a server whose live files are exactly what the recorded inputs render to:
    no changes (the same plan ``prepare`` makes then). None when anything differs. The
    snapshot may have been read `matched` (the server compared the hashes itself)."""
    layout = config.layout
    live_hashes = dict(record.hashes) if snapshot.matched else \
        {p: sha256(c) for p, c in _live_files(snapshot, layout).items()}
    if (live_hashes != record.hashes or snapshot.journal or snapshot.postgrey
            or snapshot.facts.model_dump(mode="json") != record.facts
            or any(snapshot.postconf.get(k) != v for k, v in record.settings.items())):
        return None
    plan = ServerPlan(server, transport.name, live_objects=record.objects)
    plan.warnings = quota_warnings(record.quotas, snapshot.usage,
                                   tuple(config.quota_warnings.thresholds))
    plan.live_fingerprint = plan.desired_fingerprint = _fingerprint(live_hashes, record.settings)
    manifest, _ = _manifest(snapshot.files.get(f"{layout.state_dir}/manifest.json"))
    return Prepared(plan, transport, layout, config, None, snapshot, manifest, live_hashes,
                    dict(record.hashes), {}, {})
