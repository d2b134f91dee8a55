"""What every command prints the same way: problems (file:line), errors, colour choice."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from mailstate.model.diagnostics import Issue, collapse

if TYPE_CHECKING:
    from mailstate.config.desired import Desired


def print_issues(issues: list[Issue]) -> None:
    """Every issue, one line each; a warning repeated per mailbox is summed up unless -v."""
    context = click.get_current_context(silent=True)
    if not (context and (context.params.get("verbose")
                         or context.find_root().params.get("verbose"))):
        issues = collapse(issues)
    for issue in issues:
        colour = "red" if issue.severity == "error" else "yellow"
        click.secho(str(issue), fg=colour, err=True)


def err_colour() -> bool | None:
    return False if "NO_COLOR" in os.environ else None


def fail(message: str) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True, color=err_colour())
    sys.exit(1)


def warn(message: str) -> None:
    click.secho(f"warning: {message}", fg="yellow", err=True, color=err_colour())


def load_or_exit(paths: tuple[str, ...], **change: object) -> tuple[Desired, list[Issue]]:
    """The validated repository, or its problems printed and exit 1."""
    from mailstate.offline import validate

    desired, issues = validate(list(paths), **change)  # type: ignore[arg-type]
    print_issues(issues)
    if desired is None:
        errors = sum(i.severity == "error" for i in issues)
        click.secho(f"{errors} error{'s' if errors != 1 else ''}; nothing was changed.",
                    fg="red", err=True)
        sys.exit(1)
    return desired, issues
