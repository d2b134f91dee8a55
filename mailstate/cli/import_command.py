"""`mailstate import`: a live server's mail setup written as domain files (from mailstate's
own files, or from a server Virtualmin configured)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mailstate.cli import main
from mailstate.cli.output import fail, print_issues, warn


@main.command("import")
@click.option("--target", help="where to read from: ssh://user@host[:port] or local:DIR "
              "(default: the server's target in mailstate.yaml)")
@click.option("--server", "server_name", default="imported", show_default=True,
              help="the server's name in the written files (and in mailstate.yaml)")
@click.option("--account", help="the account of every domain (default: guessed from the "
              "administrator's login or the <account>NNNN logins)")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="directory to write one domain file per domain into")
@click.option("--known-hosts", help="known_hosts file")
@click.option("--identity", help="SSH private key file")
@click.option("--from", "source", type=click.Choice(["mailstate", "virtualmin"]),
              default="mailstate", show_default=True,
              help="what configured the server: mailstate's own files, or Virtualmin "
              "(then --out gets mailstate.yaml and domains/)")
def import_cmd(target: str | None, server_name: str, account: str | None, out: Path,
               known_hosts: str | None, identity: str | None, source: str) -> None:
    """Write domain files for what a live server holds."""
    from mailstate import ImportRefused, Invalid, import_server
    from mailstate.offline import repository_config
    from mailstate.server.transport import TransportError

    try:
        done = import_server(out, source=source, target=target, server=server_name,
                             account=account, known_hosts=known_hosts, identity=identity,
                             config_path=repository_config() if source == "mailstate"
                             else None)
    except Invalid as exc:
        print_issues(exc.issues)
        sys.exit(1)
    except (ImportRefused, TransportError) as exc:
        fail(str(exc))
    for warning in done.warnings:
        warn(warning)
    for path in done.written:
        click.echo(f"wrote {path}")
    if done.source == "virtualmin":
        click.echo(f"{done.domains} domain(s), {done.mailboxes} mailbox(es), "
                   f"{len(done.warnings)} warning(s). Next: `mailstate validate {out}`, then "
                   f"`mailstate plan` there: it shows the takeover.")
        return
    if done.in_repository:
        click.echo(f"Accounts in these files: {', '.join(done.accounts)} "
                   "(each needs an entry under `accounts:` in mailstate.yaml, with its "
                   "`domains:`).")
    click.echo(f"{len(done.written)} domain file(s). Check them with `mailstate plan {out} "
               f"--target {done.target}`: it should show no changes.")
