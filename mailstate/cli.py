"""The `mailstate` command: validate, plan, apply, hash-password, schema.

Exit codes follow Terraform: 0 success (no changes with --detailed-exitcode), 1 error,
2 changes present (only with --detailed-exitcode). No traceback ever reaches the user for bad
input: errors are printed as file:line:column: what is wrong, what to do.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from . import __version__
from .issues import Issue, collapse
from .manager import DEFAULT_PARALLEL


def _print_issues(issues: list[Issue]) -> None:
    """Every issue, one line each; a warning repeated per mailbox is summed up unless -v."""
    context = click.get_current_context(silent=True)
    if not (context and (context.params.get("verbose")
                         or context.find_root().params.get("verbose"))):
        issues = collapse(issues)
    for issue in issues:
        colour = "red" if issue.severity == "error" else "yellow"
        click.secho(str(issue), fg=colour, err=True)


def _load_or_exit(paths: tuple[str, ...], **change):
    from .validate import run as validate_run

    desired, issues = validate_run(list(paths), **change)
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
@click.option("-v", "--verbose", is_flag=True,
              help="list every warning (one repeated for many mailboxes is summed up)")
def main(verbose: bool) -> None:
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
@click.option("--base", metavar="REV", help="the git revision the change started from (e.g. "
              "origin/main): clashes are blamed on the files changed since")
@click.option("--changed-by", metavar="ACCOUNT", help="PATHS are the files a change by this "
              "account touches: refuse any that is not its own domain file")
@click.option("--format", "fmt", type=click.Choice(["text", "plain", "github"]),
              default="text", show_default=True, help="plain: file:line:col lines on stdout, "
              "no colour; github: workflow commands, shown inline on a pull request")
def validate(paths: tuple[str, ...], base: str | None, changed_by: str | None,
             fmt: str) -> None:
    """Check domain files (a file, a directory, or the repository found upwards).

    Exit 0 when valid (warnings allowed), 1 when not.
    """
    if fmt != "text":
        from .annotations import FORMATS
        from .validate import run as validate_run

        found, problems = validate_run(list(paths), base=base, changed_by=changed_by,
                                       renders=True)
        for issue in problems:
            click.echo(FORMATS[fmt](issue))
        if found is None:
            sys.exit(1)
        click.echo(f"valid ({len(problems)} warning(s))" if problems else "valid")
        return
    desired, issues = _load_or_exit(paths, base=base, changed_by=changed_by, renders=True)
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
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("login")
@click.option("--scheme", type=click.Choice(["ARGON2ID", "BLF-CRYPT", "SHA512-CRYPT"]),
              default="ARGON2ID", show_default=True)
def passwd(file: Path, login: str, scheme: str) -> None:
    """Set LOGIN's password in domain FILE (asks twice, or reads one line on stdin).

    Only the password line changes; comments and layout are kept. Commit the file.
    """
    from .passwd import EditError, change_password, read_new_password

    def ask(text: str) -> str:
        return click.prompt(text, hide_input=True, err=True)

    try:
        password = read_new_password(login, sys.stdin.isatty(), ask, sys.stdin.readline)
        change_password(file, login, password, scheme)
    except EditError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    click.echo(f"{file}: set the password of {login} ({scheme}); review and commit the change.")


@main.command()
@click.argument("address")
@click.argument("paths", nargs=-1)
def explain(address: str, paths: tuple[str, ...]) -> None:
    """Where mail to ADDRESS goes, from the domain files alone (no server is contacted)."""
    from .routing import explain as explain_address

    desired, _ = _load_or_exit(paths)
    result = explain_address(address, desired.servers)
    where = f" (server {result.server})" if result.server else ""
    click.echo(f"{address}{where}")
    for line in result.lines:
        click.echo(f"  {line}")


@main.command("server-key")
@click.option("--read-only", is_flag=True, required=True,
              help="restrict the key to mailstate's read program (the only kind built)")
@click.option("--public-key", "public_key", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the key's .pub file")
@click.option("--server", "server_name", help="the server whose layout to use (default: the "
              "only one, or Debian's defaults without a mailstate.yaml)")
@click.argument("paths", nargs=-1)
def server_key(read_only: bool, public_key: Path, server_name: str | None,
               paths: tuple[str, ...]) -> None:
    """Print the authorized_keys line for a key that may only plan (untrusted pull requests).

    Put the line in the server's /root/.ssh/authorized_keys; the program it runs is installed
    by apply (`<state_dir>/read-only`).
    """
    from .readonly import authorized_keys_line
    from .repo import find_config
    from .schema import Server

    config = Server()
    if paths or find_config(Path.cwd()) is not None:
        desired, _ = _load_or_exit(paths)
        names = sorted(desired.servers)
        name = server_name or (names[0] if len(names) == 1 else None)
        if name is None:
            click.secho(f"error: give --server, one of {', '.join(names)}", fg="red", err=True)
            sys.exit(1)
        config = desired.server_config(name)
    try:
        click.echo(authorized_keys_line(config.layout, public_key.read_text()))
    except (ValueError, UnicodeDecodeError) as exc:
        click.secho(f"error: {public_key}: {exc}", fg="red", err=True)
        sys.exit(1)


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script, e.g. `eval "$(mailstate completion bash)"`."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # click ships bash, zsh and fish
    click.echo(cls(main, {}, "mailstate", "_MAILSTATE_COMPLETE").source())


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


def _targets(values: tuple[str, ...]) -> dict[str, str]:
    """`NAME=TARGET` pairs; a bare TARGET (key "") is for a run with one server."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or ":" in name or not name:
            name, target = "", value
        if name in out:
            _fail(f"--target given twice for {name or 'the server'}")
        out[name] = target
    return out


def _fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True, color=_err_colour())
    sys.exit(1)


def _err_colour() -> bool | None:
    return False if "NO_COLOR" in os.environ else None


def _target_options(fn):
    fn = click.option("-v", "--verbose", is_flag=True, help="a plain line for every step of "
                      "every server (also on a terminal)")(fn)
    fn = click.option("-q", "--quiet", is_flag=True, help="no progress; the plan, errors and "
                      "the result only")(fn)
    fn = click.option("--no-cache", is_flag=True, help="load and check every file even when "
                      "nothing changed since the last plan (the plan is the same)")(fn)
    fn = click.option("--parallel", type=click.IntRange(1, 256), default=DEFAULT_PARALLEL,
                      show_default=True, help="servers worked on at once")(fn)
    fn = click.option("--server", "only", multiple=True, metavar="NAME",
                      help="only this server (repeatable)")(fn)
    fn = click.option("--identity", help="SSH private key file (default: config, then agent)")(fn)
    fn = click.option("--known-hosts", help="known_hosts file (default: config, then "
                      "~/.ssh/known_hosts)")(fn)
    fn = click.option("--target", multiple=True, metavar="[NAME=]TARGET",
                      envvar="MAILSTATE_TARGET",
                      help="point a server at local:DIR or ssh://user@host[:port] instead of "
                      "its target in mailstate.yaml (repeatable; without NAME= for a run with "
                      "one server; env MAILSTATE_TARGET: space-separated)")(fn)
    return click.argument("paths", nargs=-1)(fn)


class _Run:
    """The options every server verb shares, turned into a Manager and a progress view."""

    def __init__(self, paths, target, known_hosts, identity, only, parallel, quiet, verbose,
                 no_cache):
        from .manager import Invalid, Manager
        from .progress import NORMAL, QUIET, VERBOSE, View

        self.view = View(QUIET if quiet else VERBOSE if verbose else NORMAL)
        self.manager = Manager(paths, targets=_targets(target), known_hosts=known_hosts,
                               identity=identity, parallel=parallel, progress=self.view,
                               cache=not no_cache)
        self.only = only
        try:
            self.manager.check()
        except Invalid as exc:
            _print_issues(exc.issues)
            click.secho(exc.summary, fg="red", err=True, color=_err_colour())
            sys.exit(1)
        _print_issues(self.manager.issues)

    def plan(self):
        from .manager import UsageError

        try:
            servers = self.manager.server_names(self.only)
        except UsageError as exc:
            _fail(str(exc))
        self.view.start(servers)
        try:
            return self.manager.plan(servers)
        finally:
            self.view.stop()

    def echo_plan(self, fleet) -> None:
        from .progress import colour_enabled, colour_plan

        click.echo(colour_plan(fleet.plan.to_text(), colour_enabled(sys.stdout)), nl=False,
                   color=True)

    def report_errors(self, fleet, what: str) -> None:
        if fleet.errors:
            names = ", ".join(fleet.errors)
            click.secho(f"{what} failed on {len(fleet.errors)} of {len(fleet.servers)} "
                        f"server{'s' if len(fleet.servers) != 1 else ''}: {names}", fg="red",
                        err=True, color=_err_colour())


@main.command()
@_target_options
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="save the plan (JSON) for `apply --plan`")
@click.option("--detailed-exitcode", is_flag=True,
              help="exit 0 for no changes, 2 for changes, 1 for an error")
@click.option("--full-plan", metavar="WHERE", help="markdown: where the full plan is (a CI "
              "artefact's URL), named when the comment must leave sections out")
def plan(paths, target, known_hosts, identity, only, parallel, quiet, verbose, no_cache, fmt,
         out, detailed_exitcode, full_plan) -> None:
    """Show what apply would change on each server (all servers at once), and its checksum."""
    run = _Run(paths, target, known_hosts, identity, only, parallel, quiet, verbose, no_cache)
    with run.plan() as fleet:
        result = fleet.plan
        if fmt == "text":
            run.echo_plan(fleet)
        else:
            click.echo(result.to_markdown(full_plan) if fmt == "markdown" else result.to_json(),
                       nl=False)
        if out:
            try:
                out.write_text(result.to_json())
            except OSError as exc:
                _fail(f"cannot save the plan to {out}: {exc.strerror}")
            click.echo(f"Saved the plan to {out}; apply it with `mailstate apply --plan {out}`.",
                       err=True)
        run.report_errors(fleet, "plan")
        sys.exit(fleet.exit_code(detailed_exitcode))


@main.command()
@click.argument("plan_file", metavar="PLANFILE", type=click.Path(exists=True, dir_okay=False,
                path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True)
@click.option("--full-plan", metavar="WHERE", help="markdown: where the full plan is")
def show(plan_file: Path, fmt: str, full_plan: str | None) -> None:
    """Print a plan saved with `plan --out` in any format (no server is contacted)."""
    from .plan import Plan

    try:
        saved = Plan.from_json(plan_file.read_text())
    except (ValueError, OSError) as exc:
        click.secho(f"error: {plan_file}: {exc}", fg="red", err=True)
        sys.exit(1)
    view = {"text": saved.to_text, "markdown": lambda: saved.to_markdown(full_plan),
            "json": saved.to_json}
    click.echo(view[fmt](), nl=False)


@main.command()
@_target_options
@click.option("--plan", "plan_file", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="apply a plan saved with `plan --out` (refused if stale)")
@click.option("--auto-approve", is_flag=True, help="do not ask for confirmation")
@click.option("--force", is_flag=True, help="overwrite managed files that were edited by hand, "
              "and apply plans that remove more than a server's safe share")
@click.option("--checksum", help="apply only if the fresh plan has this checksum (printed by "
              "`plan`): what the reviewers read, or nothing")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=60, show_default=True,
              help="seconds to wait for another apply on the same server")
def apply(paths, target, known_hosts, identity, only, parallel, quiet, verbose, no_cache,
          plan_file, auto_approve, force, checksum, lock_timeout) -> None:
    """Apply the domain files to their servers (all servers at once)."""
    from .plan import Plan

    saved = None
    if plan_file:
        try:
            saved = Plan.from_json(plan_file.read_text())
        except ValueError as exc:
            _fail(str(exc))
    run = _Run(paths, target, known_hosts, identity, only, parallel, quiet, verbose, no_cache)
    # an apply that a killed run left unfinished is completed or undone before planning
    run.manager.settle, run.manager.lock_timeout = True, lock_timeout
    with run.plan() as fleet:
        current = fleet.plan
        run.echo_plan(fleet)
        if checksum:
            from .apply import ApplyRefused
            from .checksum import check_checksum

            try:
                check_checksum(checksum, current, saved)
            except ApplyRefused as exc:
                _fail(str(exc))
        if current.has_changes or saved is not None:
            if current.has_changes and not auto_approve and saved is None and not checksum:
                # a saved or checksummed plan was reviewed when it was made
                if not sys.stdin.isatty():
                    _fail("no terminal to confirm on; review the plan and run again with "
                          "--auto-approve (or apply a saved plan with --plan)")
                if click.prompt("Apply these changes? Only 'yes' is accepted", default="",
                                show_default=False) != "yes":
                    _fail("not confirmed; nothing was changed")
            run.view.start([s.name for s in fleet.servers if s.ok])
            try:
                run.manager.apply(fleet, force=force, saved=saved)
            finally:
                run.view.stop()
        run.report_errors(fleet, "apply")
        if not fleet.ok:
            sys.exit(1)
    if current.has_changes:
        click.secho("Apply complete. " + current.summary().removeprefix("Plan: "), fg="green",
                    color=False if "NO_COLOR" in os.environ else None)


@main.command()
@_target_options
@click.option("--generation", help="the generation to go back to (default: the newest, i.e. "
              "the files as they were before the last apply)")
@click.option("--list", "list_only", is_flag=True, help="list the generations kept and stop")
@click.option("--auto-approve", is_flag=True, help="do not ask for confirmation")
def rollback(paths, target, known_hosts, identity, only, parallel, quiet, verbose, no_cache,
             generation, list_only, auto_approve) -> None:
    """Put back the files mailstate replaced in an earlier apply, and reload.

    The domain files are not changed: afterwards `plan` shows what the files in git would
    change again. Revert the commit too, or the next apply redoes what was rolled back.
    """
    run = _Run(paths, target, known_hosts, identity, only, parallel, quiet, verbose, no_cache)
    with run.plan() as fleet:
        for server in fleet.servers:
            if server.prepared is None:
                continue
            kept = server.prepared.snapshot.generations
            if list_only:
                from .generations import describe
                from .reconcile import live_generation

                click.echo(f"{server.name}:")
                for line in describe(kept, live_generation(server.prepared)):
                    click.echo(f"  {line}")
            else:
                chosen = generation or (kept[-1] if kept else "?")
                click.echo(f"{server.name}: put back the files kept by generation {chosen}")
        if not list_only and any(s.ok for s in fleet.servers):
            if not auto_approve and not (sys.stdin.isatty() and click.confirm("Roll back?")):
                _fail("not confirmed (use --auto-approve without a terminal); nothing was "
                      "changed")
            run.view.start([s.name for s in fleet.servers if s.ok])
            try:
                run.manager.rollback(fleet, generation)
            finally:
                run.view.stop()
        run.report_errors(fleet, "rollback")
        sys.exit(fleet.exit_code())


@main.command()
@_target_options
def unlock(paths, target, known_hosts, identity, only, parallel, quiet, verbose, no_cache) -> None:
    """Release a server's lock left by an apply that is gone (refused while it still runs)."""
    from .apply import ApplyRefused, unlock_server
    from .transport.base import TransportError

    run = _Run(paths, target, known_hosts, identity, only, parallel, quiet, verbose, no_cache)
    with run.plan() as fleet:
        failed = False
        for server in fleet.servers:
            if server.prepared is None:
                continue
            try:
                for line in unlock_server(server.prepared):
                    click.echo(f"{server.name}: {line}")
            except (ApplyRefused, TransportError) as exc:
                click.secho(f"error: {exc}", fg="red", err=True, color=_err_colour())
                failed = True
        run.report_errors(fleet, "unlock")
        sys.exit(1 if failed or not fleet.ok else 0)


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
def import_cmd(target, server_name, account, out, known_hosts, identity, source) -> None:
    """Write domain files for what a live server holds (its mailstate-managed files)."""
    if source == "virtualmin":
        from .adopt.cli import import_virtualmin

        sys.exit(import_virtualmin(target, server_name, account, out, known_hosts, identity))
    from .manager import Invalid, UsageError, import_server
    from .transport.base import TransportError

    try:
        done = import_server(out, target=target, server=server_name, account=account,
                             known_hosts=known_hosts, identity=identity)
    except Invalid as exc:
        _print_issues(exc.issues)
        sys.exit(1)
    except (UsageError, TransportError) as exc:
        _fail(str(exc))
    for warning in done.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True, color=_err_colour())
    for path in done.written:
        click.echo(f"wrote {path}")
    if done.in_repository:
        click.echo(f"Accounts in these files: {', '.join(sorted(set(done.written.values())))} "
                   "(each needs an entry under `accounts:` in mailstate.yaml, with its "
                   "`domains:`).")
    click.echo(f"{len(done.written)} domain file(s). Check them with `mailstate plan {out} "
               f"--target {done.target}`: it should show no changes.")
