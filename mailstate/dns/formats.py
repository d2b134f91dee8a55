"""Records as text: a zone file fragment, octoDNS's YAML, JSON.

- zone: one line per record, absolute names, for an authoritative server's zone file (the
  operator adds the SOA and NS records of each zone).
- octodns: one YAML document per zone, as octoDNS's YamlProvider reads ``<zone>.yaml``
  (TXT semicolons escaped as octoDNS requires).
- json: a list of objects (zone, name, type, value, ttl, why), for scripts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from itertools import groupby

from mailstate.dns.records import Record

FORMATS = ("zone", "octodns", "json")
TXT_CHUNK = 255  # the longest character-string of a TXT record (RFC 1035 3.3)


def by_zone(records: Iterable[Record]) -> dict[str, list[Record]]:
    return {zone: list(group) for zone, group in groupby(records, key=lambda r: r.zone)}


def _fqdn(host: str) -> str:
    return host + "."


def zone_data(record: Record) -> str:
    """The record's data as a zone file writes it (host names absolute, TXT quoted and cut
    into strings of at most 255 characters; the values hold no quote or backslash)."""
    if record.type == "TXT":
        text = record.value
        return " ".join(f'"{text[i:i + TXT_CHUNK]}"' for i in range(0, len(text), TXT_CHUNK))
    if record.type in ("MX", "SRV"):
        *numbers, host = record.value.split(" ")
        return " ".join([*numbers, _fqdn(host)])
    return record.value


def render_zone(records: list[Record]) -> str:
    lines: list[str] = []
    for zone, group in by_zone(records).items():
        if lines:
            lines.append("")
        lines.append(f"; {zone}")
        width = max(len(_fqdn(r.name)) for r in group)
        for record in group:
            lines.append(f"{_fqdn(record.name):<{width}} {record.ttl} IN {record.type:<4} "
                         f"{zone_data(record)}")
    return "\n".join(lines) + "\n" if lines else ""


def _octodns_value(record: Record) -> dict[str, object] | str:
    if record.type == "MX":
        preference, host = record.value.split(" ")
        return {"exchange": _fqdn(host), "preference": int(preference)}
    if record.type == "SRV":
        priority, weight, port, host = record.value.split(" ")
        return {"port": int(port), "priority": int(priority), "target": _fqdn(host),
                "weight": int(weight)}
    return record.value.replace(";", "\\;")  # TXT: octoDNS refuses an unescaped ";"


def octodns_zone(group: list[Record]) -> dict[str, list[dict[str, object]]]:
    """One zone as octoDNS's YAML provider's data: relative name -> its records."""
    zone: dict[str, list[dict[str, object]]] = {}
    for (name, rtype), same in groupby(sorted(group, key=lambda r: (r.relative, r.type)),
                                       key=lambda r: (r.relative, r.type)):
        rows = list(same)
        zone.setdefault(name, []).append({"type": rtype, "ttl": rows[0].ttl,
                                          "values": [_octodns_value(r) for r in rows]})
    return zone


def _yaml_scalar(value: object) -> str:
    # a JSON string or number is a YAML scalar of the same value
    return json.dumps(value, ensure_ascii=False)


def _yaml_zone(zone: dict[str, list[dict[str, object]]]) -> list[str]:
    lines: list[str] = []
    for name, rows in zone.items():
        lines.append(f"{_yaml_scalar(name)}:")
        for row in rows:
            lines.append(f"  - type: {row['type']}")
            lines.append(f"    ttl: {row['ttl']}")
            lines.append("    values:")
            for value in row["values"]:  # type: ignore[attr-defined]
                if isinstance(value, dict):
                    first = True
                    for key, item in value.items():
                        lead = "      - " if first else "        "
                        lines.append(f"{lead}{key}: {_yaml_scalar(item)}")
                        first = False
                else:
                    lines.append(f"      - {_yaml_scalar(value)}")
    return lines


def render_octodns(records: list[Record]) -> str:
    """Every zone as its own YAML document, headed by the file name octoDNS reads it from."""
    docs = []
    for zone, group in by_zone(records).items():
        docs.append("\n".join([f"# {zone}.yaml", "---", *_yaml_zone(octodns_zone(group))]))
    return "\n".join(docs) + "\n" if docs else ""


def octodns_files(records: list[Record]) -> dict[str, str]:
    """File name -> text, one file per zone, for a directory octoDNS's YamlProvider reads."""
    return {f"{zone}.yaml": "---\n" + "\n".join(_yaml_zone(octodns_zone(group))) + "\n"
            for zone, group in by_zone(records).items()}


def render_json(records: list[Record]) -> str:
    return json.dumps([{"zone": r.zone, "name": r.name, "type": r.type, "value": r.value,
                        "ttl": r.ttl, "why": r.why} for r in records], indent=2) + "\n"


def render(records: list[Record], fmt: str) -> str:
    if fmt == "zone":
        return render_zone(records)
    if fmt == "octodns":
        return render_octodns(records)
    if fmt == "json":
        return render_json(records)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
