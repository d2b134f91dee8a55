"""`mailstate dns`: each domain's DNS records, printed or checked against live DNS."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import click

from mailstate.cli import main
from mailstate.cli.output import fail, load_or_exit


def _nameserver(value: str | None) -> tuple[str | None, int]:
    """IP or IP:PORT ([IPv6]:PORT) -> (ip, port)."""
    if value is None:
        return None, 53
    host, port = value, "53"
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "53"
    elif value.count(":") == 1:
        host, port = value.split(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError(port)
    except ValueError:
        fail(f"--resolver {value!r} is not an IP address (with an optional :PORT)")
    return host, number


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["zone", "octodns", "json"]),
              default="zone", show_default=True, help="zone: lines for a zone file; octodns: "
              "YAML for octoDNS's YAML provider (one document per zone); json: for scripts")
@click.option("--domain", "domains", multiple=True, metavar="NAME",
              help="only this domain or domain alias (repeat for more)")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="with --format octodns: write one <zone>.yaml per zone into this directory "
              "(what octoDNS's YamlProvider reads) instead of printing")
@click.option("--check", is_flag=True, help="look every record up in live DNS; exit 1 naming "
              "each one missing or wrong")
@click.option("--resolver", metavar="IP[:PORT]", help="with --check: ask this DNS server "
              "instead of the system's resolver")
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=5.0, show_default=True,
              help="with --check: seconds to wait for one answer")
def dns(paths: tuple[str, ...], fmt: str, domains: tuple[str, ...], out: Path | None,
        check: bool, resolver: str | None, timeout: float) -> None:
    """Print the DNS records each domain and domain alias needs (MX, SPF, DMARC, SRV), or
    check them against live DNS (--check). A domain file as PATH: only its domain and domain
    aliases.

    Exit 0; with --check 1 when any record is missing, wrong or unanswered.
    """
    from mailstate.dns.records import DnsError
    from mailstate.offline import check_dns, dns_files, dns_records, render_dns

    if resolver and not check:
        fail("--resolver is for --check")
    if out and fmt != "octodns":
        fail("--out writes octoDNS files: give --format octodns")
    desired, _ = load_or_exit(paths)
    try:
        records = dns_records(desired, list(domains), list(paths))
    except DnsError as exc:
        fail(str(exc))
    if not check:
        if out:
            out.mkdir(parents=True, exist_ok=True)
            for name, text in dns_files(records).items():
                (out / name).write_text(text)
            click.echo(f"wrote {len(records)} records in {len(set(r.zone for r in records))} "
                       f"files to {out}", err=True)
            return
        click.echo(render_dns(records, fmt), nl=False)
        return
    nameserver, port = _nameserver(resolver)
    findings = check_dns(records, nameserver, port, timeout)
    bad = [f for f in findings if not f.ok]
    for finding in findings:
        click.secho(str(finding), fg=None if finding.ok else "red")
    zones = len({r.zone for r in records})
    if bad:
        click.secho(f"{len(bad)} of {len(findings)} records missing or wrong in {zones} "
                    "domains", fg="red", err=True)
        sys.exit(1)
    click.echo(f"all {len(findings)} records of {zones} domains are published", err=True)
