"""Plan -> staged upload, server-side checks, atomic swap, reload, verify, roll back on failure.

One round trip per server after the read: it uploads the staged generation (a tar on stdin,
checked whole by its sha256) and starts ``server-activate.sh`` from it in a session of its own,
then waits for its outcome. The activation checks with the server's own tools, keeps the
current files as a generation, writes a journal, swaps the new files in with rename(2), reloads
only the daemons whose files changed, and puts everything back if a daemon does not come back.
It does not depend on the connection: when the client, the SSH session or the network goes
away, it finishes or rolls back by itself, and a client that lost the connection reconnects and
reads the outcome. A run killed outright (SIGKILL, a reboot) leaves its journal, which the next
run completes or undoes before it plans (``settle``). A plan with nothing to do makes no round
trip at all.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import io
import json
import os
import secrets
import socket
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mailstate.config.desired import Desired
from mailstate.engine.prepare import Prepared, prepare
from mailstate.engine.retention import prune
from mailstate.files.notice import render_notice
from mailstate.files.programs import script
from mailstate.files.render import login as dovecot_user
from mailstate.files.render import welcome_recipient
from mailstate.files.server_contract import Exit, Meta
from mailstate.files.welcome import welcome_mail
from mailstate.guards.safety import LOCK_TIMEOUT, ApplyRefused
from mailstate.model.state import Mailbox, ServerState
from mailstate.plan import ServerPlan
from mailstate.server.transport import Result, TransportError

RECONNECT_FOR = 120.0  # seconds a client that lost the connection tries to reach the server
IDLE_TIMEOUT = 20.0  # seconds without a heartbeat before the connection counts as lost
OUTCOMES = {
    Exit.LOCKED: "another apply holds the lock", Exit.STALE: "the plan is stale",
    Exit.CHECK_FAILED: "a check on the server failed; nothing was changed",
    Exit.NO_GENERATION: "no such generation; nothing was changed",
    Exit.UNSAFE_PATH: "an unsafe path on the server; nothing was changed",
    Exit.NOT_STORED: "the new files could not be stored (disk full?); nothing was changed",
    Exit.NOT_KEPT: "the current files could not be kept (disk full?); nothing was changed",
    Exit.RESTORED: "a step failed after the swap; the previous files were restored",
    Exit.KILLED: "the activation was killed",
    Exit.NOT_STARTED: "the upload did not complete; nothing was changed",
    Exit.NOT_RESTORED: "the previous files could not all be restored; the next apply finishes that",
    Exit.STOPPED: "the activation was stopped (SIGTERM); the next apply completes or undoes it"}
STEP = "@step "  # activate.sh's progress lines: "@step checking", never shown as output
Step = Callable[[str], None]


@dataclass
class Applied:
    server: str
    changed: bool
    output: list[str] = field(default_factory=list)


def _lines(items: list[str]) -> bytes:
    return "".join(f"{i}\n" for i in items).encode()


def generation_id(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")


def run_id() -> str:
    return f"{generation_id()}-{secrets.token_hex(4)}"


def _holder() -> str:
    """Who runs this apply, for the lock's holder record (one line, printable)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    text = f"{user}@{socket.gethostname()} (client pid {os.getpid()})"
    return "".join(c if c.isprintable() else "?" for c in text)


def _control(mode: str, state_dir: str, lock_timeout: float) -> dict[Meta, bytes]:
    return {Meta.MODE: mode.encode(), Meta.STATE_DIR: state_dir.encode(),
            Meta.LOCK_TIMEOUT: f"{max(lock_timeout, 0):g}".encode(),
            Meta.HOLDER: _holder().encode()}


def _sha(data: bytes | None) -> str:
    return "absent" if data is None else hashlib.sha256(data).hexdigest()


def expected(prep: Prepared) -> tuple[list[str], list[str]]:
    """What the live server must still hold for this plan to apply (the compare-and-swap):
    every managed file the plan saw, the manifest and recorded state, the main.cf settings."""
    live, layout = prep.live_hashes, prep.layout
    paths = sorted(set(live) | set(prep.manifest) | set(prep.wanted_hashes))
    files = [f"{live.get(p, 'absent')} {p}" for p in paths]
    for record in ("manifest.json", "state.json"):
        path = f"{layout.state_dir}/{record}"
        files.append(f"{_sha(prep.snapshot.files.get(path))} {path}")
    settings = [f"{k}\t{prep.snapshot.postconf.get(k, 'absent')}"
                for k in sorted(prep.rendered.postfix_settings)]
    return files, settings


def build_stage(prep: Prepared, state: ServerState, now: dt.datetime | None = None,
                lock_timeout: float = LOCK_TIMEOUT) -> bytes:
    """The generation to upload: new files, the activation script, and its meta/ lists."""
    layout, plan, wanted = prep.layout, prep.plan, prep.rendered.by_path()
    written = [wanted[a.path] for a in plan.files if a.action == "write"]
    removed = [a.path for a in plan.files if a.action == "remove"]
    gen = generation_id(now)
    commands = prep.config.commands
    settings = prep.settings
    manifest = {"format": 1, "generation": gen, "files": dict(sorted(prep.wanted_hashes.items()))}
    mailboxes = state.mailboxes()
    expect, expect_postconf = expected(prep)
    meta: dict[Meta | str, bytes] = {
        **_control("apply", layout.state_dir, lock_timeout),
        Meta.DB_TYPE: prep.snapshot.facts.db_type.encode(),
        Meta.GENERATION: gen.encode(),
        Meta.EXPECT: _lines(expect),
        Meta.EXPECT_POSTCONF: _lines(expect_postconf),
        Meta.WRITE: _lines([f"{f.mode:o} {f.group} {f.path}" for f in written]),
        Meta.REMOVE: _lines(removed),
        Meta.POSTMAP: _lines([f.path for f in written if f.postmap]),
        Meta.SIEVE: _lines([f.path for f in written if f.path.endswith(".sieve")]),
        Meta.CHECK_DOVECOT: _lines([f.path for f in written if f.service == "dovecot"]),
        Meta.DOVECOT_FRAGMENT: layout.dovecot_fragment.encode(),
        Meta.POSTGREY_DEFAULT: layout.postgrey_default.encode(),
        Meta.POSTCONF: _lines([f"{k} = {v}" for k, v in sorted(settings.items())]),
        Meta.RELOAD: _lines(plan.reloads),
        f"{Meta.CMD}postfix": commands.postfix_reload.encode(),
        f"{Meta.CMD}dovecot": commands.dovecot_reload.encode(),
        f"{Meta.CMD}postgrey": commands.postgrey_restart.encode(),
        Meta.VMAIL: f"{layout.vmail_uid} {layout.vmail_gid} {layout.vmail_dir}".encode(),
        Meta.LMTP_SOCKET: f"/var/spool/postfix/{layout.lmtp_socket}".encode(),
        Meta.PRUNE: _lines(prune([*prep.snapshot.generations, gen])),
        Meta.PROBE: _lines(probe_logins(plan.welcome, mailboxes)),
        Meta.MANIFEST: json.dumps(manifest, indent=1).encode(),
        Meta.STATE: json.dumps({"format": 1, "generation": gen,
                                  "state": state.model_dump(mode="json")}).encode(),
    }
    members: dict[str, tuple[bytes, int]] = {
        "activate.sh": (script("server-activate.sh").encode(), 0o700)}
    members.update({f"meta/{k}": (v, 0o600) for k, v in meta.items()})
    members.update({f"files{f.path}": (f.content, 0o600) for f in written})
    envelopes = []  # NAME<tab>SENDER<tab>RECIPIENT: one list, not two files per mail
    for login in plan.welcome:
        box = mailboxes[login]
        members[f"welcome/{login}.eml"] = (
            welcome_mail(box, now=now or dt.datetime.now(dt.UTC),
                         protocols=prep.snapshot.facts.protocols or ("imap",)), 0o600)
        envelopes.append(f"{login}\tpostmaster@{box.domain}\t{welcome_recipient(box)}")
    for name, (account, contact) in sorted(prep.notices.items()):
        # sent by the activation like a welcome mail (a login never holds "@")
        mail = render_notice(state.domains[name], plan.server, account, contact,
                             prep.snapshot.facts, now)
        members[f"welcome/@{name}.eml"] = (mail, 0o600)
        envelopes.append(f"@{name}\tpostmaster@{name}\t{contact}")  # the envelope recipient
    if envelopes:
        members["welcome/envelopes"] = (_lines(envelopes), 0o600)
    return _tar(members)


PROBE_MAX = 20


def probe_logins(new: list[str], mailboxes: dict[str, Mailbox]) -> list[str]:
    """Mailboxes the server opens after a reload to prove it can store mail: the new ones
    (their homes are made now), those with a Sieve script, and one other; at most PROBE_MAX."""
    chosen = dict.fromkeys(new)
    chosen.update(dict.fromkeys(sorted(m for m, b in mailboxes.items() if b.vacation)))
    chosen.update(dict.fromkeys(sorted(mailboxes)[:1]))
    return [dovecot_user(mailboxes[m].login) for m in chosen if m in mailboxes][:PROBE_MAX]


def control_stage(mode: str, state_dir: str, lock_timeout: float = LOCK_TIMEOUT, *,
                  db_type: str, **extra: str) -> bytes:
    """A stage that only runs the activation script: "recover", or "rollback" (a target)."""
    meta = {**_control(mode, state_dir, lock_timeout), Meta.DB_TYPE: db_type.encode(),
            **{Meta(k): v.encode() for k, v in extra.items()}}
    members = {"activate.sh": (script("server-activate.sh").encode(), 0o700)}
    members.update({f"meta/{k}": (v, 0o600) for k, v in meta.items()})
    return _tar(members)


def _tar(members: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (data, mode) in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _wait(prep: Prepared, run: str, on_line: Callable[[str], None] | None) -> Result:
    """Reconnect after a lost connection and read the outcome of the detached activation."""
    deadline = time.monotonic() + RECONNECT_FOR
    while True:
        try:
            prep.transport.reconnect()
            return prep.transport.run(script("server-wait.sh"), [prep.layout.state_dir, run],
                                      on_line=on_line, idle_timeout=IDLE_TIMEOUT)
        except TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def _run_stage(prep: Prepared, tar: bytes, generation: str = "",
               step: Step | None = None) -> list[str]:
    """Upload a stage, start its activate.sh detached, and report its outcome: one round trip,
    whatever the stage holds (plus a reconnect when the connection was lost meanwhile).
    `step` hears where activate.sh is (checking, swapping, reloading) as it gets there."""
    server, state_dir = prep.plan.server, prep.layout.state_dir
    run = run_id()
    push = script("server-push.sh", "server-wait.sh")
    on_line = None
    if step is not None:
        def on_line(line: str) -> None:
            if line.startswith(STEP):
                step(line[len(STEP):])

        step("uploading")
    try:
        result = prep.transport.run(push, [state_dir, run, hashlib.sha256(tar).hexdigest()],
                                    tar, on_line=on_line, idle_timeout=IDLE_TIMEOUT)
    except TransportError as exc:
        try:
            result = _wait(prep, run, on_line)
        except TransportError:
            raise TransportError(f"{server}: the connection was lost ({exc}) and could not be "
                                 f"made again; the server finishes or undoes the apply by "
                                 f"itself (run {run}); plan again to see the outcome") from None
    output = [line for line in result.stdout.decode("utf-8", "replace").splitlines()
              if not line.startswith(STEP)]
    if result.returncode == Exit.KILLED:  # no outcome: complete or undo it right away
        detail = result.stderr.decode("utf-8", "replace").strip()
        try:
            settled = recover_server(prep, generation=generation)
        except TransportError as exc:
            raise TransportError(f"{server}: failed ({OUTCOMES[Exit.KILLED]}):\n{detail}\n"
                                 f"the next run completes or undoes it: {exc}") from None
        if any(line.startswith("completed an unfinished apply") for line in settled):
            return [*output, *settled]  # it had passed its commit mark: the apply is done
        raise TransportError(f"{server}: failed ({OUTCOMES[Exit.KILLED]}):\n{detail}\n"
                             + "\n".join(settled))
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip() or "\n".join(output)
        reason = OUTCOMES.get(result.returncode, f"exit {result.returncode}")
        raise TransportError(f"{server}: failed ({reason}):\n{detail}")
    return output


def recover_server(prep: Prepared, lock_timeout: float = LOCK_TIMEOUT,
                   generation: str = "") -> list[str]:
    """Complete or undo an unfinished activation (its journal), remove stages left behind.
    With the generation of a killed run: also say whether that run had finished."""
    tar = control_stage("recover", prep.layout.state_dir, lock_timeout,
                        db_type=prep.snapshot.facts.db_type, generation=generation)
    return _run_stage(prep, tar)


def rollback_server(prep: Prepared, generation: str | None = None,
                    step: Step | None = None, lock_timeout: float = LOCK_TIMEOUT) -> Applied:
    """Put back the files a generation kept (default: the newest, i.e. before the last apply)."""
    generations = prep.snapshot.generations
    if not generations:
        raise ApplyRefused(f"{prep.plan.server}: no generations are kept on this server")
    target = generation or generations[-1]
    if target not in generations:
        raise ApplyRefused(f"{prep.plan.server}: no generation {target!r}; kept: "
                           f"{', '.join(generations)}")
    tar = control_stage("rollback", prep.layout.state_dir, lock_timeout,
                        db_type=prep.snapshot.facts.db_type, rollback=target)
    return Applied(prep.plan.server, True, _run_stage(prep, tar, step=step))


def nothing_to_apply(plan: ServerPlan) -> Applied:
    return Applied(plan.server, False, ["no changes; nothing written, nothing reloaded"])


def apply_server(prep: Prepared, state: ServerState, force: bool = False,
                 step: Step | None = None, lock_timeout: float = LOCK_TIMEOUT) -> Applied:
    """Apply one server's plan; raises ApplyRefused or TransportError with a clear message."""
    plan = prep.plan
    if not plan.has_changes:
        return nothing_to_apply(plan)
    if plan.drift and not force:
        raise ApplyRefused(
            f"{plan.server}: {', '.join(plan.drift)} changed by hand since the last apply; "
            "look at the difference, then apply with --force to overwrite it")
    if prep.snapshot.journal:
        raise ApplyRefused(f"{plan.server}: an earlier apply did not finish "
                           f"({prep.snapshot.journal}); plan again: apply completes or undoes "
                           "it first")
    now = dt.datetime.now(dt.UTC)
    stage = build_stage(prep, state, now=now, lock_timeout=lock_timeout)
    return Applied(plan.server, True, _run_stage(prep, stage, generation_id(now), step))


def settle(desired: Desired, prep: Prepared,
           lock_timeout: float = LOCK_TIMEOUT) -> tuple[Prepared, list[str]]:
    """Before an apply plans: complete or undo an activation a killed run left unfinished
    (its journal), then read the server again. Nothing to do: the same Prepared, no output."""
    if not prep.snapshot.journal:
        return prep, []
    output = recover_server(prep, lock_timeout)
    return prepare(desired.intent(prep.plan.server), prep.transport), output


def unlock_server(prep: Prepared) -> list[str]:
    """Release the lock of a run that is gone (its holder record); refuse while it lives."""
    result = prep.transport.run(script("server-unlock.sh"), [prep.layout.state_dir])
    if result.returncode != 0:
        raise ApplyRefused(f"{prep.plan.server}: {result.message.removeprefix('error: ')}")
    return result.stdout.decode("utf-8", "replace").splitlines()
