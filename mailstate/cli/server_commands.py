"""Commands that work on servers: plan, show, apply, rollback, unlock. Each builds one
``Manager`` from the options every server verb shares, and prints what it returns."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mailstate.cli import main
from mailstate.cli.output import err_colour, fail, print_issues
from mailstate.manager import DEFAULT_PARALLEL


def _targets(values: tuple[str, ...]) -> dict[str, str]:
    """`NAME=TARGET` pairs; a bare TARGET (key "") is for a run with one server."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or ":" in name or not name:
            name, target = "", value
        if name in out:
            fail(f"--target given twice for {name or 'the server'}")
        out[name] = target
    return out


def _target_options(fn):  # type: ignore[no-untyped-def]
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

    def __init__(self, options: dict[str, Any], **settings: Any) -> None:
        from mailstate import Invalid, Manager
        from mailstate.cli.progress import NORMAL, QUIET, VERBOSE, View

        self.view = View(QUIET if options["quiet"] else VERBOSE if options["verbose"]
                         else NORMAL)
        self.manager = Manager(options["paths"], targets=_targets(options["target"]),
                               known_hosts=options["known_hosts"],
                               identity=options["identity"], parallel=options["parallel"],
                               progress=self.view, cache=not options["no_cache"], **settings)
        self.only = options["only"]
        try:
            self.manager.check()
        except Invalid as exc:
            print_issues(exc.issues)
            click.secho(exc.summary, fg="red", err=True, color=err_colour())
            sys.exit(1)
        print_issues(self.manager.issues)

    def plan(self):  # type: ignore[no-untyped-def]
        from mailstate import SelectionError

        try:
            servers = self.manager.server_names(self.only)
        except SelectionError as exc:
            fail(str(exc))
        self.view.start(servers)
        try:
            return self.manager.plan(servers)
        finally:
            self.view.stop()

    def run(self, fleet, work) -> None:  # type: ignore[no-untyped-def]
        """`work` on the servers that were read, with the progress view on."""
        self.view.start([s.name for s in fleet.servers if s.ok])
        try:
            work()
        finally:
            self.view.stop()

    @staticmethod
    def echo_plan(fleet) -> None:  # type: ignore[no-untyped-def]
        from mailstate.cli.progress import colour_enabled, colour_plan
        from mailstate.offline import plan_lines

        click.echo(colour_plan(plan_lines(fleet.plan), colour_enabled(sys.stdout)), nl=False,
                   color=True)

    @staticmethod
    def report_errors(fleet, what: str) -> None:  # type: ignore[no-untyped-def]
        if fleet.errors:
            names = ", ".join(fleet.errors)
            click.secho(f"{what} failed on {len(fleet.errors)} of {len(fleet.servers)} "
                        f"server{'s' if len(fleet.servers) != 1 else ''}: {names}", fg="red",
                        err=True, color=err_colour())


_SHARED = ("paths", "target", "known_hosts", "identity", "only", "parallel", "quiet",
           "verbose", "no_cache")


def _shared(params: dict[str, Any]) -> dict[str, Any]:
    return {k: params[k] for k in _SHARED}


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
def plan(fmt: str, out: Path | None, detailed_exitcode: bool, full_plan: str | None,
         **options: Any) -> None:
    """Show what apply would change on each server (all servers at once), and its checksum."""
    from mailstate.offline import render_plan

    run = _Run(_shared(options))
    with run.plan() as fleet:
        result = fleet.plan
        if fmt == "text":
            run.echo_plan(fleet)
        else:
            click.echo(render_plan(result, fmt, full_plan), nl=False)
        if out:
            try:
                out.write_text(render_plan(result, "json"))
            except OSError as exc:
                fail(f"cannot save the plan to {out}: {exc.strerror}")
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
    from mailstate.offline import load_plan, render_plan

    try:
        saved = load_plan(plan_file)
    except (ValueError, OSError) as exc:
        click.secho(f"error: {plan_file}: {exc}", fg="red", err=True)
        sys.exit(1)
    click.echo(render_plan(saved, fmt, full_plan), nl=False)


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
def apply(plan_file: Path | None, auto_approve: bool, force: bool, checksum: str | None,
          lock_timeout: float, **options: Any) -> None:
    """Apply the domain files to their servers (all servers at once)."""
    from mailstate.offline import check_checksum, load_plan
    from mailstate.views.text import plan_summary

    saved = None
    if plan_file:
        try:
            saved = load_plan(plan_file)
        except (ValueError, OSError) as exc:
            fail(str(exc))
    # an apply that a killed run left unfinished is completed or undone before planning
    run = _Run(_shared(options), settle=True, lock_timeout=lock_timeout)
    with run.plan() as fleet:
        current = fleet.plan
        run.echo_plan(fleet)
        if checksum:
            problem = check_checksum(checksum, current, saved)
            if problem:
                fail(problem)
        if current.has_changes or saved is not None:
            if current.has_changes and not auto_approve and saved is None and not checksum:
                # a saved or checksummed plan was reviewed when it was made
                if not sys.stdin.isatty():
                    fail("no terminal to confirm on; review the plan and run again with "
                         "--auto-approve (or apply a saved plan with --plan)")
                if click.prompt("Apply these changes? Only 'yes' is accepted", default="",
                                show_default=False) != "yes":
                    fail("not confirmed; nothing was changed")
            run.run(fleet, lambda: run.manager.apply(fleet, force=force, saved=saved))
        run.report_errors(fleet, "apply")
        if not fleet.ok:
            sys.exit(1)
    if current.has_changes:
        click.secho("Apply complete. " + plan_summary(current).removeprefix("Plan: "),
                    fg="green", color=err_colour())


@main.command()
@_target_options
@click.option("--generation", help="the generation to go back to (default: the newest, i.e. "
              "the files as they were before the last apply)")
@click.option("--list", "list_only", is_flag=True, help="list the generations kept and stop")
@click.option("--auto-approve", is_flag=True, help="do not ask for confirmation")
def rollback(generation: str | None, list_only: bool, auto_approve: bool,
             **options: Any) -> None:
    """Put back the files mailstate replaced in an earlier apply, and reload.

    The domain files are not changed: afterwards `plan` shows what the files in git would
    change again. Revert the commit too, or the next apply redoes what was rolled back.
    """
    run = _Run(_shared(options))
    with run.plan() as fleet:
        if list_only:
            for name, lines in run.manager.describe_generations(fleet).items():
                click.echo(f"{name}:")
                for line in lines:
                    click.echo(f"  {line}")
        else:
            for name, kept in run.manager.generations(fleet).items():
                chosen = generation or (kept[-1] if kept else "?")
                click.echo(f"{name}: put back the files kept by generation {chosen}")
        if not list_only and any(s.ok for s in fleet.servers):
            if not auto_approve and not (sys.stdin.isatty() and click.confirm("Roll back?")):
                fail("not confirmed (use --auto-approve without a terminal); nothing was "
                     "changed")
            run.run(fleet, lambda: run.manager.rollback(fleet, generation))
        run.report_errors(fleet, "rollback")
        sys.exit(fleet.exit_code())


@main.command()
@_target_options
def unlock(**options: Any) -> None:
    """Release a server's lock left by an apply that is gone (refused while it still runs)."""
    run = _Run(_shared(options))
    with run.plan() as fleet:
        for name, lines in run.manager.unlock(fleet).items():
            for line in lines:
                click.echo(f"{name}: {line}")
        for error in fleet.errors.values():
            click.secho(f"error: {error}", fg="red", err=True, color=err_colour())
        run.report_errors(fleet, "unlock")
        sys.exit(fleet.exit_code())
