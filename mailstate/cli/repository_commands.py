"""Commands that need no server: validate, explain, passwords, the read-only key, completion,
the JSON Schemas."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mailstate.cli import main
from mailstate.cli.output import fail, load_or_exit

SCHEMES = ["ARGON2ID", "BLF-CRYPT", "SHA512-CRYPT"]


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--base", metavar="REV", help="the git revision the change started from (e.g. "
              "origin/main): clashes are blamed on the files changed since")
@click.option("--changed-by", metavar="ACCOUNT", help="PATHS are the files a change by this "
              "account touches: refuse any that is not its own domain file")
@click.option("--format", "fmt", type=click.Choice(["text", "plain", "github"]),
              default="text", show_default=True, help="plain: file:line:col lines on stdout, "
              "no colour; github: workflow commands, shown inline on a pull request")
@click.option("--no-cache", is_flag=True, help="read and check every file, even those whose "
              "bytes were found valid before (the result is the same)")
def validate(paths: tuple[str, ...], base: str | None, changed_by: str | None,
             fmt: str, no_cache: bool) -> None:
    """Check domain files (a file, a directory, or the repository at the root of this one).

    Exit 0 when valid (warnings allowed), 1 when not.
    """
    if fmt != "text":
        from mailstate.cli.annotations import FORMATS
        from mailstate.offline import validate as validate_files

        found, problems = validate_files(list(paths), base=base, changed_by=changed_by,
                                         renders=True, cache=not no_cache)
        for issue in problems:
            click.echo(FORMATS[fmt](issue))
        if found is None:
            sys.exit(1)
        click.echo(f"valid ({len(problems)} warning(s))" if problems else "valid")
        return
    desired, issues = load_or_exit(paths, base=base, changed_by=changed_by, renders=True,
                                   cache=not no_cache)
    domains = sum(len(s.domains) for s in desired.servers.values())
    boxes = sum(len(s.mailboxes()) for s in desired.servers.values())
    warnings = len(issues)
    click.echo(f"valid: {domains} domain{'s' if domains != 1 else ''}, {boxes} mailbox"
               f"{'es' if boxes != 1 else ''} on {len(desired.servers)} server"
               f"{'s' if len(desired.servers) != 1 else ''}"
               + (f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""))


@main.command("hash-password")
@click.option("--scheme", type=click.Choice(SCHEMES), default="ARGON2ID", show_default=True)
def hash_password_cmd(scheme: str) -> None:
    """Read a password (prompt without echo, or one line on stdin) and print its hash."""
    from mailstate.offline import hash_password

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
@click.option("--scheme", type=click.Choice(SCHEMES), default="ARGON2ID", show_default=True)
def passwd(file: Path, login: str, scheme: str) -> None:
    """Set LOGIN's password in domain FILE (asks twice, or reads one line on stdin).

    Only the password line changes; comments and layout are kept. Commit the file.
    """
    from mailstate.config.password_edit import EditError, read_new_password
    from mailstate.offline import set_password

    def ask(text: str) -> str:
        return click.prompt(text, hide_input=True, err=True)

    try:
        password = read_new_password(login, sys.stdin.isatty(), ask, sys.stdin.readline)
        set_password(file, login, password, scheme)
    except EditError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    click.echo(f"{file}: set the password of {login} ({scheme}); review and commit the change.")


@main.command()
@click.argument("address")
@click.argument("paths", nargs=-1)
def explain(address: str, paths: tuple[str, ...]) -> None:
    """Where mail to ADDRESS goes, from the domain files alone (no server is contacted)."""
    from mailstate.offline import explain as explain_address

    desired, _ = load_or_exit(paths)
    result = explain_address(address, desired)
    where = f" (server {result.server})" if result.server else ""
    click.echo(f"{address}{where}")
    for line in result.lines:
        click.echo(f"  {line}")


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "names"]), default="text",
              show_default=True, help="json: a list a CI matrix can take as it is; names: the "
              "names only, space-separated (for `--server` in a shell)")
@click.option("--shard", metavar="I/N", help="only shard I of N: every server is in exactly one "
              "shard, the shards balanced by mailboxes (for a fixed number of CI jobs)")
def servers(paths: tuple[str, ...], fmt: str, shard: str | None) -> None:
    """List the repository's servers with how many domains and mailboxes each holds (no
    server is contacted): a CI job shards plan and apply by server with it."""
    import json

    from mailstate.offline import servers as list_servers
    from mailstate.offline import shard as pick

    index = total = 0
    if shard is not None:
        first, _, second = shard.partition("/")
        if not (first.isascii() and first.isdigit() and second.isascii() and second.isdigit()):
            fail(f"--shard {shard}: write I/N, e.g. --shard 2/4")
        index, total = int(first), int(second)
    desired, _ = load_or_exit(paths)
    found = list_servers(desired)
    if shard is not None:
        try:
            found = pick(found, index, total)
        except ValueError as exc:
            fail(str(exc))
    if fmt == "json":
        click.echo(json.dumps(found))
    elif fmt == "names":
        click.echo(" ".join(str(e["name"]) for e in found))
    else:
        for entry in found:
            click.echo(f"{entry['name']}\t{entry['domains']} domains\t{entry['mailboxes']} "
                       f"mailboxes\t{entry['target'] or '-'}")


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
    from mailstate.offline import read_key_line, repository_here

    desired = load_or_exit(paths)[0] if paths or repository_here() else None
    try:
        text = public_key.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{public_key}: {exc}")
    try:
        click.echo(read_key_line(text, desired, server_name))
    except ValueError as exc:
        fail(f"{exc}" if str(exc).startswith("give --server") else f"{public_key}: {exc}")


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
    from mailstate.offline import json_schema

    text = json_schema(which)
    if out:
        out.write_text(text + "\n")
    else:
        click.echo(text)


