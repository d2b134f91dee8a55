"""The library's face for what needs no server: validate, explain, passwords, the read-only
key's line, saved plans and their views, the JSON Schemas, each domain's DNS records. The
command line calls these (and ``Manager`` for servers) and nothing deeper."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailstate.config.desired import Desired
    from mailstate.dns.check import Finding
    from mailstate.dns.records import Record
    from mailstate.model.diagnostics import Issue
    from mailstate.model.routing import Explanation
    from mailstate.plan import Plan
    from mailstate.views.text import Line

FORMATS = ("text", "markdown", "json")  # the views of a plan


def validate(paths: list[str], *, base: str | None = None, changed_by: str | None = None,
             renders: bool = False, cache: bool = False) -> tuple[Desired | None, list[Issue]]:
    """The domain files checked without a server: (the desired state or None when invalid,
    every problem found). `renders`: also render every server's files, so that what apply
    would refuse is refused here too (what `mailstate validate` does). `base`: blame clashes
    on the files changed since that git revision; `changed_by`: every changed file must be a
    domain file of that account; `cache`: a domain file whose bytes were found valid before
    is taken from its per-file record (the result is the same)."""
    from mailstate.config.validation import run

    return run(paths, base=base, changed_by=changed_by, renders=renders, cache=cache)


def explain(address: str, desired: Desired) -> Explanation:
    """Where mail to `address` goes, from the domain files alone."""
    from mailstate.model.routing import explain as explain_address

    return explain_address(address, desired.servers)


def hash_password(password: str, scheme: str) -> str:
    """A hash for a domain file's `password:` (ValueError for a password that cannot be)."""
    from mailstate.model.passwords import hash_password as make

    return make(password, scheme)


def set_password(path: Path, login: str, password: str, scheme: str) -> None:
    """Write `login`'s new hash into domain file `path` in place (only that line changes);
    raises ``EditError`` (from ``mailstate.config.password_edit``) when it cannot."""
    from mailstate.config.password_edit import change_password

    change_password(path, login, password, scheme)


def read_key_line(public_key: str, desired: Desired | None, server: str | None) -> str:
    """The authorized_keys line binding `public_key` to the server's read-only program, with
    the server's layout (Debian's defaults without a repository); ValueError when the key is
    not one or the server must be named."""
    from mailstate.files.programs import authorized_keys_line
    from mailstate.schema import Server

    config = Server()
    if desired is not None:
        names = sorted(desired.servers)
        name = server or (names[0] if len(names) == 1 else None)
        if name is None:
            raise ValueError(f"give --server, one of {', '.join(names)}")
        config = desired.server_config(name)
    return authorized_keys_line(config.layout, public_key)


def load_plan(path: Path) -> Plan:
    """A plan saved with ``plan --out``; ValueError (or OSError) when it is not one."""
    from mailstate.views.json import load_plan as load

    return load(path.read_text())


def render_plan(plan: Plan, fmt: str = "text", full_plan: str | None = None) -> str:
    """The plan as `fmt` (text, markdown or json); `full_plan` names where the full plan is
    when a markdown comment must leave sections out."""
    if fmt == "markdown":
        from mailstate.views.markdown import render_markdown

        return render_markdown(plan, full_plan)
    if fmt == "json":
        from mailstate.views.json import render_json

        return render_json(plan)
    from mailstate.views.text import render_text

    return render_text(plan)


def plan_lines(plan: Plan) -> list[Line]:
    """The text plan line by line, each with its tone (add, change, remove, warning), for a
    terminal to colour."""
    from mailstate.views.text import render_lines

    return render_lines(plan)


def json_schema(which: str) -> str:
    """The JSON Schema of a domain file (`domain`) or of mailstate.yaml (`config`)."""
    from mailstate.schema import Config, DomainFile

    model = DomainFile if which == "domain" else Config
    return json.dumps(model.model_json_schema(by_alias=True, mode="validation"), indent=2)


def repository_config() -> Path | None:
    """The repository's mailstate.yaml for the working directory, if it is in one."""
    from mailstate.config.locate import find_config

    return find_config(Path.cwd())


def repository_here() -> bool:
    """Whether the working directory is in a repository (a mailstate.yaml at its root)."""
    return repository_config() is not None


def check_checksum(expected: str, fresh: Plan, reviewed: Plan | None = None) -> str | None:
    """None when the fresh plan is the one reviewed (its checksum is `expected`); else why
    not, and with the `reviewed` plan which lines differ."""
    from mailstate.guards.checksum import check_checksum as check
    from mailstate.guards.safety import ApplyRefused

    try:
        check(expected, fresh, reviewed)
    except ApplyRefused as exc:
        return str(exc)
    return None


def dns_records(desired: Desired, domains: list[str] | None = None,
                paths: list[str] | None = None) -> list[Record]:
    """The DNS records every domain and domain alias needs (of `domains`, and of the domain
    files among `paths`, when given); ``mailstate.dns.records.DnsError`` when the repository
    cannot name them."""
    from mailstate.dns.records import domain_records, domains_of_files

    only = set(domains or ())
    if paths:
        only |= domains_of_files(desired, paths) or set()
    return domain_records(desired, only or None)


def render_dns(records: list[Record], fmt: str = "zone") -> str:
    """The records as `fmt`: zone (a zone file fragment), octodns (YAML) or json."""
    from mailstate.dns.formats import render

    return render(records, fmt)


def dns_files(records: list[Record]) -> dict[str, str]:
    """One octoDNS YAML file per zone (file name -> text)."""
    from mailstate.dns.formats import octodns_files

    return octodns_files(records)


def check_dns(records: list[Record], nameserver: str | None = None, port: int = 53,
              timeout: float = 5.0) -> list[Finding]:
    """Each record looked up in live DNS (the system's resolver, or only `nameserver`),
    waiting at most `timeout` seconds for one answer."""
    from mailstate.dns.check import check, resolver_for

    return check(records, resolver_for(nameserver, port, timeout))


def servers(desired: Desired) -> list[dict[str, object]]:
    """Every server of the repository, for a CI matrix to shard on: name, target (None when
    only ``--target`` gives it), domains and mailboxes it holds; sorted by name."""
    out: list[dict[str, object]] = []
    for name, state in sorted(desired.servers.items()):
        out.append({"name": name, "target": desired.server_config(name).target,
                    "domains": len(state.domains), "mailboxes": len(state.mailboxes())})
    return out


def shard(found: list[dict[str, object]], index: int, total: int) -> list[dict[str, object]]:
    """Shard `index` (1..`total`) of the servers: each server in exactly one shard, the
    shards balanced by mailboxes (the biggest server first into the lightest shard; ties by
    name), the same for the same files on every runner. ValueError for a bad shard."""
    if not 1 <= index <= total:
        raise ValueError(f"--shard {index}/{total}: write I/N with 1 <= I <= N")
    load = [0] * total
    picked: list[dict[str, object]] = []
    def count(entry: dict[str, object], key: str) -> int:
        value = entry[key]
        return value if isinstance(value, int) else 0

    order = sorted(found, key=lambda e: (-count(e, "mailboxes"), -count(e, "domains"),
                                         str(e["name"])))
    for entry in order:
        lightest = min(range(total), key=lambda i: (load[i], i))
        load[lightest] += count(entry, "mailboxes") + 1
        if lightest == index - 1:
            picked.append(entry)
    return sorted(picked, key=lambda e: str(e["name"]))
