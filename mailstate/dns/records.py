"""The DNS records mail needs, for every domain and domain alias of a desired state.

For each name: MX to its server's mail host, SPF (``v=spf1 mx -all``: the hosts the domain's
MX names may send for it, nothing else), DMARC (the policy of ``mailstate.yaml``'s
``dns.dmarc``), and RFC 6186 SRV records for the services its server offers (``servers.X.dns.
services``). Every value comes from validated data: domain names and host names are checked by
the schema, the DMARC policy is one of three words and its report address a checked address.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from mailstate.config.desired import Desired
from mailstate.model.values import check_domain
from mailstate.schema import Server

SPF = "v=spf1 mx -all"
MX_PREFERENCE = 10

# RFC 6186 (RFC 8314 for submissions): service -> port
SRV_PORTS = {"imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995, "submission": 587,
             "submissions": 465}


class DnsError(ValueError):
    """The repository does not say enough to name the records (e.g. no mail host)."""


@dataclass(frozen=True, order=True)
class Record:
    """One resource record. `name` and host names in `value` are absolute, without the final
    dot; `value` is the record's data in zone-file order (MX: "10 host", SRV: "0 1 993 host",
    TXT: the text, unquoted)."""

    zone: str  # the domain (or domain alias) the record belongs to
    name: str
    type: str
    value: str
    ttl: int
    why: str  # what the record is for, one line

    @property
    def relative(self) -> str:
        """The name relative to its zone ("" for the zone's apex)."""
        if self.name == self.zone:
            return ""
        return self.name[: -len(self.zone) - 1]


def mail_host(server: str, config: Server) -> str:
    """The host name the server's domains' MX names: `mail_host:`, else the host of an
    ``ssh://`` target when it is a DNS name (not an address, not an ssh_config alias)."""
    if config.mail_host:
        return config.mail_host
    target = config.target or ""
    if target.startswith("ssh://"):
        host = urlsplit(target).hostname or ""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if "." in host:
                try:
                    return check_domain(host)
                except ValueError:
                    pass
    raise DnsError(f"server {server!r} has no mail host name: add `mail_host: mail.example.org` "
                   f"under `servers: {server}:` in mailstate.yaml (the name the domains' MX "
                   "records point at)")


def domains_of_files(desired: Desired, paths: list[str]) -> set[str] | None:
    """The domains and domain aliases of the domain files among `paths` (None when no path is
    a domain file: a directory or the repository means every domain)."""
    wanted = {os.path.realpath(p) for p in paths if os.path.isfile(p)}
    found: set[str] = set()
    for item in desired.inputs:
        if os.path.realpath(item.doc.path) in wanted:
            found.update([item.spec.domain, *item.spec.domain_aliases])
    return found or None


def dmarc_value(desired: Desired) -> str:
    dmarc = desired.repo.config.dns.dmarc
    value = f"v=DMARC1; p={dmarc.policy}"
    if dmarc.report_to:
        value += f"; rua=mailto:{dmarc.report_to}"
    return value


def domain_records(desired: Desired, only: set[str] | None = None) -> list[Record]:
    """Every record of every domain and domain alias (of `only`, when given), sorted by
    zone, then in a fixed order of kinds."""
    ttl = desired.repo.config.dns.ttl
    dmarc = dmarc_value(desired)
    records: list[Record] = []
    for server, state in sorted(desired.servers.items()):
        config = desired.server_config(server)
        host = None
        for domain in sorted(state.domains.values(), key=lambda d: d.name):
            for zone in (domain.name, *domain.domain_aliases):
                if only is not None and zone not in only:
                    continue
                if desired.repo.standalone:
                    raise DnsError("a domain file alone names no mail host: run `mailstate "
                                   "dns` in a repository whose mailstate.yaml gives the server's "
                                   "`mail_host:`")
                host = host or mail_host(server, config)
                alias = f" (alias of {domain.name})" if zone != domain.name else ""
                records += [
                    Record(zone, zone, "MX", f"{MX_PREFERENCE} {host}", ttl,
                           f"mail for {zone}{alias} goes to {host} (server {server})"),
                    Record(zone, zone, "TXT", SPF, ttl,
                           f"SPF: only the hosts of {zone}'s MX send mail from {zone}"),
                    Record(zone, f"_dmarc.{zone}", "TXT", dmarc, ttl,
                           "DMARC: what receivers do with mail failing SPF and DKIM"),
                ]
                for service in config.dns.services:
                    records.append(Record(
                        zone, f"_{service}._tcp.{zone}", "SRV",
                        f"0 1 {SRV_PORTS[service]} {host}", ttl,
                        f"RFC 6186: mail clients find {service} on {host}"))
    if only is not None:
        unknown = only - {r.zone for r in records}
        if unknown:
            raise DnsError(f"not a domain or domain alias of this repository: "
                           f"{', '.join(sorted(unknown))}")
    return records
