"""The `mailstate` command: validate, plan, apply, hash-password, schema.

Exit codes follow Terraform: 0 success (no changes with --detailed-exitcode), 1 error,
2 changes present (only with --detailed-exitcode). No traceback ever reaches the user for bad
input: errors are printed as file:line:column: what is wrong, what to do.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from . import __version__
from .load import Issue
from .validate import run as validate_run


def _print_issues(issues: list[Issue]) -> None:
    for issue in issues:
        colour = "red" if issue.severity == "error" else "yellow"
        click.secho(str(issue), fg=colour, err=True)


def _load_or_exit(paths: tuple[str, ...]):
    desired, issues = validate_run(list(paths))
    _print_issues(issues)
    if desired is None:
        errors = sum(i.severity == "error" for i in issues)
        click.secho(f"{errors} error{'s' if errors != 1 else ''}; nothing was changed.",
                    fg="red", err=True)
        sys.exit(1)
    return desired, issues


@contextlib.contextmanager
def _usage_errors_exit_1() -> Iterator[None]:
    try:
        yield
    except click.UsageError as exc:
        exc.exit_code = 1
        raise


class _Commands(click.Group):
    """A mistyped command or option exits 1, like any error: 2 means "changes present" with
    --detailed-exitcode, and CI must not read a typo as a pending change."""

    def make_context(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with _usage_errors_exit_1():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        with _usage_errors_exit_1():
            return super().invoke(ctx)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mailstate")
def main() -> None:
    """Hosted e-mail as code: YAML domain files reconciled onto Postfix, Dovecot and postgrey."""


def entry_point() -> None:
    """The console script. A short-lived command builds a large tree of objects (every YAML
    node is kept for error positions): the cyclic collector would rescan it again and again,
    doubling the run time, and reclaim next to nothing; memory is returned when the process
    exits. Only here, never for a program that calls `main` in-process."""
    gc.disable()
    main()


@main.command()
@click.argument("paths", nargs=-1)
def validate(paths: tuple[str, ...]) -> None:
    """Check domain files (a file, a directory, or the repository found upwards).

    Exit 0 when valid (warnings allowed), 1 when not.
    """
    desired, issues = _load_or_exit(paths)
    domains = sum(len(s.domains) for s in desired.servers.values())
    boxes = sum(len(s.mailboxes()) for s in desired.servers.values())
    warnings = len(issues)
    click.echo(f"valid: {domains} domain{'s' if domains != 1 else ''}, {boxes} mailbox"
               f"{'es' if boxes != 1 else ''} on {len(desired.servers)} server"
               f"{'s' if len(desired.servers) != 1 else ''}"
               + (f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""))


@main.command("hash-password")
@click.option("--scheme", type=click.Choice(["ARGON2ID", "BLF-CRYPT", "SHA512-CRYPT"]),
              default="ARGON2ID", show_default=True)
def hash_password_cmd(scheme: str) -> None:
    """Read a password (prompt without echo, or one line on stdin) and print its hash."""
    from .passwords import hash_password

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        click.secho("error: empty password", fg="red", err=True)
        sys.exit(1)
    try:
        click.echo(hash_password(password, scheme))
    except ValueError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)


@main.command()
@click.argument("which", type=click.Choice(["domain", "config"]), default="domain")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="write to a file instead of standard output")
def schema(which: str, out: Path | None) -> None:
    """Print the JSON Schema of a domain file or of mailstate.yaml (for editors)."""
    from .schema import Config, DomainFile

    model = DomainFile if which == "domain" else Config
    text = json.dumps(model.model_json_schema(by_alias=True, mode="validation"), indent=2)
    if out:
        out.write_text(text + "\n")
    else:
        click.echo(text)


def _target_options(fn):
    fn = click.option("--identity", help="SSH private key file (default: config, then agent)")(fn)
    fn = click.option("--known-hosts", help="known_hosts file (default: config, then "
                      "~/.ssh/known_hosts)")(fn)
    fn = click.option("--target", help="override the server's target: local:DIR or "
                      "ssh://user@host[:port] (one server only)")(fn)
    return click.argument("paths", nargs=-1)(fn)


def _prepare(paths, target, known_hosts, identity):
    from .reconcile import open_transport, prepare, target_of
    from .transport.base import TransportError

    desired, _ = _load_or_exit(paths)
    servers = sorted({i.server for i in desired.inputs if i.spec.domain in desired.repo.selected})
    if target and len(servers) > 1:
        click.secho(f"error: --target names one server, but these files use {len(servers)}: "
                    f"{', '.join(servers)}", fg="red", err=True)
        sys.exit(1)
    prepared = []
    try:
        for server in servers:
            config = desired.server_config(server)
            transport = open_transport(target_of(desired, server, target), config,
                                       desired.repo.root, known_hosts, identity)
            prepared.append(prepare(desired, server, transport))
    except (TransportError, ValueError) as exc:  # ValueError: render refused a value
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    return desired, prepared


@main.command()
@_target_options
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="save the plan (JSON) for `apply --plan`")
@click.option("--detailed-exitcode", is_flag=True,
              help="exit 0 for no changes, 2 for changes, 1 for an error")
def plan(paths, target, known_hosts, identity, fmt, out, detailed_exitcode) -> None:
    """Show what apply would change on each server."""
    from .plan import Plan

    _, prepared = _prepare(paths, target, known_hosts, identity)
    result = Plan([p.plan for p in prepared])
    for p in prepared:
        p.transport.close()
    view = {"text": result.to_text, "markdown": result.to_markdown, "json": result.to_json}
    click.echo(view[fmt](), nl=False)
    if out:
        try:
            out.write_text(result.to_json())
        except OSError as exc:
            click.secho(f"error: cannot save the plan to {out}: {exc.strerror}", fg="red",
                        err=True)
            sys.exit(1)
        click.echo(f"Saved the plan to {out}; apply it with `mailstate apply --plan {out}`.",
                   err=True)
    if detailed_exitcode and result.has_changes:
        sys.exit(2)


@main.command()
@_target_options
@click.option("--plan", "plan_file", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="apply a plan saved with `plan --out` (refused if stale)")
@click.option("--auto-approve", is_flag=True, help="do not ask for confirmation")
@click.option("--force", is_flag=True, help="overwrite managed files that were edited by hand")
def apply(paths, target, known_hosts, identity, plan_file, auto_approve, force) -> None:
    """Apply the domain files to their servers."""
    from .apply import ApplyRefused, apply_server
    from .plan import Plan
    from .transport.base import TransportError

    desired, prepared = _prepare(paths, target, known_hosts, identity)
    current = Plan([p.plan for p in prepared])
    click.echo(current.to_text(), nl=False)
    try:
        if plan_file:
            _check_saved(Plan.from_json(plan_file.read_text()), current)
        if not current.has_changes:
            return
        if not auto_approve and not plan_file:  # a saved plan was reviewed when it was made
            if not sys.stdin.isatty():
                raise ApplyRefused("no terminal to confirm on; review the plan and run again "
                                   "with --auto-approve (or apply a saved plan with --plan)")
            if click.prompt("Apply these changes? Only 'yes' is accepted", default="",
                            show_default=False) != "yes":
                raise ApplyRefused("not confirmed; nothing was changed")
        for p in prepared:
            applied = apply_server(p, desired.servers[p.plan.server], force=force)
            for line in applied.output:
                click.echo(f"{p.plan.server}: {line}")
    except (ApplyRefused, TransportError, ValueError) as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    finally:
        for p in prepared:
            p.transport.close()
    click.secho("Apply complete. " + current.summary().removeprefix("Plan: "), fg="green")


def _check_saved(saved, current) -> None:
    from .apply import ApplyRefused

    before = {s.server: s for s in saved.servers}
    for server in current.servers:
        old = before.get(server.server)
        if old is None:
            raise ApplyRefused(f"the saved plan does not cover server {server.server!r}")
        if old.live_fingerprint != server.live_fingerprint:
            raise ApplyRefused(f"the saved plan is stale: server {server.server!r} changed "
                               "since it was made; run plan again")
        if old.desired_fingerprint != server.desired_fingerprint:
            raise ApplyRefused(f"the saved plan is stale: the domain files for "
                               f"{server.server!r} changed since it was made; run plan again")


@main.command()
@_target_options
@click.option("--generation", help="the generation to go back to (default: the newest, i.e. "
              "the files as they were before the last apply)")
@click.option("--list", "list_only", is_flag=True, help="list the generations kept and stop")
@click.option("--auto-approve", is_flag=True, help="do not ask for confirmation")
def rollback(paths, target, known_hosts, identity, generation, list_only, auto_approve) -> None:
    """Put back the files mailstate replaced in an earlier apply, and reload.

    The domain files are not changed: afterwards `plan` shows what the files in git would
    change again. Revert the commit too, or the next apply redoes what was rolled back.
    """
    from .apply import ApplyRefused, rollback_server
    from .transport.base import TransportError

    _, prepared = _prepare(paths, target, known_hosts, identity)
    try:
        for p in prepared:
            kept = p.snapshot.generations
            if list_only:
                click.echo(f"{p.plan.server}: " + (", ".join(kept) or "no generations kept"))
                continue
            chosen = generation or (kept[-1] if kept else "?")
            click.echo(f"{p.plan.server}: put back the files kept by generation {chosen}")
            if not auto_approve and not (sys.stdin.isatty() and click.confirm("Roll back?")):
                raise ApplyRefused("not confirmed (use --auto-approve without a terminal); "
                                   "nothing was changed")
            for line in rollback_server(p, generation).output:
                click.echo(f"{p.plan.server}: {line}")
    except (ApplyRefused, TransportError) as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    finally:
        for p in prepared:
            p.transport.close()


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
def import_cmd(target, server_name, account, out, known_hosts, identity) -> None:
    """Write domain files for what a live server holds (its mailstate-managed files)."""
    from .importer import import_state
    from .layout import Facts
    from .parse import parse
    from .reconcile import open_transport
    from .repo import find_config
    from .schema import Server
    from .transport.base import TransportError, read_snapshot
    from .values import check_login

    try:
        check_login(server_name)
        if account:
            check_login(account)
    except ValueError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    config, root = Server(), Path.cwd()
    found = find_config(Path.cwd())
    if found is not None:
        from .validate import run as validate_run

        desired, issues = validate_run([str(found)])
        if desired is None:
            _print_issues(issues)
            sys.exit(1)
        config, root = desired.server_config(server_name), desired.repo.root
    target = target or config.target
    if not target:
        click.secho("error: give --target (or a server with a target in mailstate.yaml)",
                    fg="red", err=True)
        sys.exit(1)
    try:
        transport = open_transport(target, config, root, known_hosts, identity)
        try:
            snapshot = read_snapshot(transport, config.layout, Facts())
        finally:
            transport.close()
    except TransportError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    records = {f"{config.layout.state_dir}/manifest.json", f"{config.layout.state_dir}/state.json"}
    parsed = parse({p: c for p, c in snapshot.files.items() if p not in records},
                   config.layout, snapshot.facts)
    for warning in parsed.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    written = import_state(parsed.state, server_name, out, account, with_plan=found is None)
    for path in written:
        click.echo(f"wrote {path}")
    if found is not None:
        click.echo(f"Accounts in these files: {', '.join(sorted(set(written.values())))} "
                   "(each needs an entry under `accounts:` in mailstate.yaml).")
    click.echo(f"{len(written)} domain file(s). Check them with `mailstate plan {out} --target "
               f"{target}`: it should show no changes.")
