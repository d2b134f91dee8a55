"""`mailstate import --from virtualmin`: the command's few lines over ``virtualmin.py``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..reconcile import open_transport
from ..schema import Server
from ..transport.base import TransportError
from ..values import check_login
from .output import write
from .virtualmin import import_server


def import_virtualmin(target: str | None, server: str, account: str | None, out: Path,
                      known_hosts: str | None, identity: str | None) -> int:
    """Read, convert, write; returns the exit code."""
    colour = False if "NO_COLOR" in os.environ else None

    def fail(text: str) -> int:
        click.secho(f"error: {text}", fg="red", err=True, color=colour)
        return 1

    if account:
        return fail("--account does not go with --from virtualmin: each Virtualmin owner "
                    "becomes its own account")
    try:
        check_login(server)
    except ValueError as exc:
        return fail(str(exc))
    if not target:
        return fail("give --target: the Virtualmin server, ssh://root@HOST or local:DIR")
    if out.exists() and any(out.iterdir()):
        return fail(f"{out} is not empty; give a new directory for the imported repository")
    try:
        transport = open_transport(target, Server(), Path.cwd(), known_hosts, identity)
        try:
            imported = import_server(transport, server, target)
        finally:
            transport.close()
    except TransportError as exc:
        return fail(str(exc))
    server_config = imported.config["servers"][server]  # type: ignore[index]
    for key, value in (("known_hosts", known_hosts), ("identity", identity)):
        if value:
            server_config[key] = os.path.abspath(value)
    for warning in imported.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True, color=colour)
    for path in write(imported, out, target):
        click.echo(f"wrote {path}")
    boxes = sum(len(d.get("mailboxes", {})) for d in imported.domains.values())  # type: ignore[arg-type]
    click.echo(f"{len(imported.domains)} domain(s), {boxes} mailbox(es), "
               f"{len(imported.warnings)} warning(s). Next: `mailstate validate {out}`, then "
               f"`mailstate plan` there: it shows the takeover.")
    return 0
