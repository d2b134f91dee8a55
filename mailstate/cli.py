"""The `mailstate` command: validate, plan, apply, hash-password, schema.

Exit codes follow Terraform: 0 success (no changes with --detailed-exitcode), 1 error,
2 changes present (only with --detailed-exitcode). No traceback ever reaches the user for bad
input: errors are printed as file:line:column: what is wrong, what to do.
"""

from __future__ import annotations

import json
import sys
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mailstate")
def main() -> None:
    """Hosted e-mail as code: YAML domain files reconciled onto Postfix, Dovecot and postgrey."""


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
    click.echo(hash_password(password, scheme))


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
