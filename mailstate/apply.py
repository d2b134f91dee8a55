"""Plan -> staged upload, server-side checks, atomic swap, reload, verify, roll back on failure.

Two round trips per server after the read: one uploads the staged generation (a tar on stdin),
one runs ``server-activate.sh`` from it, which checks with the server's own tools, keeps the
current files as a generation, swaps the new ones in with rename(2), reloads only the daemons
whose files changed, and puts everything back if a daemon does not come back. The count does
not grow with the number of mailboxes. A plan with nothing to do makes no round trip at all.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field

from .notice import render_notice
from .reconcile import Prepared
from .render import login as dovecot_user
from .render import render_welcome, welcome_recipient
from .retention import prune
from .state import Mailbox, ServerState
from .transport.base import TransportError, script

PUSH = """set -eu
umask 077
dir="${MAILSTATE_ROOT:-}$1"
mkdir -p "$dir"
stage=$(mktemp -d "$dir/stage.XXXXXX")
tar -xf - -C "$stage" || { rm -rf "$stage"; exit 1; }
basename "$stage"
"""
# Each upload has a directory of its own: an apply that then loses the lock to another must
# not have replaced the other's files under it (activate.sh removes its stage when it ends).
ACTIVATE = 'exec sh "${MAILSTATE_ROOT:-}$1/$2/activate.sh"'
STAGE_NAME = re.compile(r"stage\.[A-Za-z0-9]+")
STEP = "@step "  # activate.sh's progress lines: "@step checking", never shown as output
Step = Callable[[str], None]


class ApplyRefused(Exception):
    """Apply stopped before changing anything; the message says why and what to do."""


@dataclass
class Applied:
    server: str
    changed: bool
    output: list[str] = field(default_factory=list)


def _lines(items: list[str]) -> bytes:
    return "".join(f"{i}\n" for i in items).encode()


def generation_id(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")


def build_stage(prep: Prepared, state: ServerState, now: dt.datetime | None = None) -> bytes:
    """The generation to upload: new files, the activation script, and its meta/ lists."""
    layout, plan, wanted = prep.layout, prep.plan, prep.rendered.by_path()
    written = [wanted[a.path] for a in plan.files if a.action == "write"]
    removed = [a.path for a in plan.files if a.action == "remove"]
    gen = generation_id(now)
    live = prep.live_hashes
    commands = prep.config.commands
    settings = prep.settings
    manifest = {"format": 1, "generation": gen, "files": dict(sorted(prep.wanted_hashes.items()))}
    mailboxes = state.mailboxes()
    meta: dict[str, bytes] = {
        "state_dir": layout.state_dir.encode(),
        "db_type": prep.snapshot.facts.db_type.encode(),
        "generation": gen.encode(),
        "expect": _lines([f"{live.get(a.path, 'absent')} {a.path}"
                          for a in plan.files]),
        "write": _lines([f"{f.mode:o} {f.group} {f.path}" for f in written]),
        "remove": _lines(removed),
        "postmap": _lines([f.path for f in written if f.postmap]),
        "sieve": _lines([f.path for f in written if f.path.endswith(".sieve")]),
        "check_dovecot": _lines([f.path for f in written if f.service == "dovecot"]),
        "dovecot_fragment": layout.dovecot_fragment.encode(),
        "postconf": _lines([f"{k} = {v}" for k, v in sorted(settings.items())]),
        "reload": _lines(plan.reloads),
        "cmd_postfix": commands.postfix_reload.encode(),
        "cmd_dovecot": commands.dovecot_reload.encode(),
        "cmd_postgrey": commands.postgrey_restart.encode(),
        "vmail": f"{layout.vmail_uid} {layout.vmail_gid} {layout.vmail_dir}".encode(),
        "lmtp_socket": f"/var/spool/postfix/{layout.lmtp_socket}".encode(),
        "prune": _lines(prune([*prep.snapshot.generations, gen])),
        "probe": _lines(probe_logins(plan.welcome, mailboxes)),
        "manifest.json": json.dumps(manifest, indent=1).encode(),
        "state.json": json.dumps({"format": 1, "generation": gen,
                                  "state": state.model_dump(mode="json")}).encode(),
    }
    members: dict[str, tuple[bytes, int]] = {
        "activate.sh": (script("server-activate.sh").encode(), 0o700)}
    members.update({f"meta/{k}": (v, 0o600) for k, v in meta.items()})
    members.update({f"files{f.path}": (f.content, 0o600) for f in written})
    for login in plan.welcome:
        welcome = render_welcome(mailboxes[login], now=now,
                                 protocols=prep.snapshot.facts.protocols or ("imap",))
        members[f"welcome/{login}.eml"] = (welcome, 0o600)
        members[f"welcome/{login}.from"] = (f"postmaster@{mailboxes[login].domain}".encode(),
                                            0o600)
        members[f"welcome/{login}.to"] = (welcome_recipient(mailboxes[login]).encode(), 0o600)
    for name, (account, contact) in sorted(prep.notices.items()):
        # sent by the activation like a welcome mail (a login never holds "@")
        mail = render_notice(state.domains[name], plan.server, account, contact,
                             prep.snapshot.facts, now)
        members[f"welcome/@{name}.eml"] = (mail, 0o600)
        members[f"welcome/@{name}.from"] = (f"postmaster@{name}".encode(), 0o600)
        members[f"welcome/@{name}.to"] = (contact.encode(), 0o600)  # the envelope recipient
    return _tar(members)


PROBE_MAX = 20


def probe_logins(new: list[str], mailboxes: dict[str, Mailbox]) -> list[str]:
    """Mailboxes the server opens after a reload to prove it can store mail: the new ones
    (their homes are made now), those with a Sieve script, and one other; at most PROBE_MAX."""
    chosen = dict.fromkeys(new)
    chosen.update(dict.fromkeys(sorted(m for m, b in mailboxes.items() if b.vacation)))
    chosen.update(dict.fromkeys(sorted(mailboxes)[:1]))
    return [dovecot_user(mailboxes[m].login) for m in chosen if m in mailboxes][:PROBE_MAX]


def _tar(members: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (data, mode) in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _run_stage(prep: Prepared, tar: bytes, step: Step | None = None) -> list[str]:
    """Upload a stage and run its activate.sh: two round trips, whatever the stage holds.
    `step` hears where activate.sh is (checking, swapping, reloading) as it gets there."""
    server, state_dir = prep.plan.server, prep.layout.state_dir
    if step:
        step("uploading")
    pushed = prep.transport.run(PUSH, [state_dir], tar)
    if pushed.returncode != 0:
        raise TransportError(f"{server}: uploading the new files failed: {pushed.message}")
    stage = pushed.stdout.decode("utf-8", "replace").strip()
    if not STAGE_NAME.fullmatch(stage):
        raise TransportError(f"{server}: uploading the new files failed: unexpected answer "
                             f"{stage[:200]!r}")
    if step is None:
        result = prep.transport.run(ACTIVATE, [state_dir, stage])
    else:
        def on_line(line: str) -> None:
            if line.startswith(STEP):
                step(line[len(STEP):])

        step("activating")
        result = prep.transport.run(ACTIVATE, [state_dir, stage], on_line=on_line)
    output = [line for line in result.stdout.decode("utf-8", "replace").splitlines()
              if not line.startswith(STEP)]
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip() or "\n".join(output)
        what = {75: "another apply holds the lock", 76: "the plan is stale",
                10: "a check on the server failed; nothing was changed",
                11: "no such generation; nothing was changed",
                20: "a daemon failed after the swap; the previous files were restored"}
        reason = what.get(result.returncode, f"exit {result.returncode}")
        raise TransportError(f"{server}: failed ({reason}):\n{detail}")
    return output


def rollback_server(prep: Prepared, generation: str | None = None,
                    step: Step | None = None) -> Applied:
    """Put back the files a generation kept (default: the newest, i.e. before the last apply)."""
    generations = prep.snapshot.generations
    if not generations:
        raise ApplyRefused(f"{prep.plan.server}: no generations are kept on this server")
    target = generation or generations[-1]
    if target not in generations:
        raise ApplyRefused(f"{prep.plan.server}: no generation {target!r}; kept: "
                           f"{', '.join(generations)}")
    meta = {"state_dir": prep.layout.state_dir, "db_type": prep.snapshot.facts.db_type,
            "generation": generation_id(), "rollback": target}
    members = {"activate.sh": (script("server-activate.sh").encode(), 0o700)}
    members.update({f"meta/{k}": (v.encode(), 0o600) for k, v in meta.items()})
    return Applied(prep.plan.server, True, _run_stage(prep, _tar(members), step))


def apply_server(prep: Prepared, state: ServerState, force: bool = False,
                 step: Step | None = None) -> Applied:
    """Apply one server's plan; raises ApplyRefused or TransportError with a clear message."""
    plan = prep.plan
    if not plan.has_changes:
        return Applied(plan.server, False, ["no changes; nothing written, nothing reloaded"])
    if plan.drift and not force:
        raise ApplyRefused(
            f"{plan.server}: {', '.join(plan.drift)} changed by hand since the last apply; "
            "look at the difference, then apply with --force to overwrite it")
    return Applied(plan.server, True, _run_stage(prep, build_stage(prep, state), step))
