"""The `mailstate` command: click commands over the library's face (``Manager`` and
``mailstate.offline``), with progress, colour and CI annotation formats.

Exit codes follow Terraform: 0 success (no changes with --detailed-exitcode), 1 error,
2 changes present (only with --detailed-exitcode). No traceback ever reaches the user for bad
input: errors are printed as file:line:column: what is wrong, what to do.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import click

from mailstate import __version__


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


# The commands register themselves on `main` (imported last: they import `main`).
from mailstate.cli import (  # noqa: E402
    dns_command,
    import_command,
    repository_commands,
    server_commands,
)

__all__ = ["dns_command", "entry_point", "import_command", "main", "repository_commands",
           "server_commands"]
