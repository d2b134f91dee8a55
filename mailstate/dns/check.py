"""Live DNS against the records a repository needs (dnspython).

Each needed record is looked up (its name and type) and judged:

- MX: one of the name's MX records names the mail host (its preference is the operator's);
- SPF: the name has exactly one ``v=spf1`` TXT record, and it is the one printed;
- DMARC: exactly one ``v=DMARC1`` TXT record, with the printed policy (``p=``) and, when one
  is configured, the printed report address (``rua=``); other tags are the operator's;
- SRV: one of the name's SRV records names the mail host and the port.

A name that does not exist or has no record of the type is "missing"; other answers that do
not fit are "wrong", with what was found. A query that gets no answer (timeout, SERVFAIL) is
"unanswered": the check cannot say, and fails too.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.resolver

from mailstate.dns.records import Record


@dataclass(frozen=True)
class Finding:
    record: Record
    verdict: str  # "ok", "missing", "wrong", "unanswered"
    found: tuple[str, ...] = ()  # what DNS holds (for wrong)
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def __str__(self) -> str:
        head = f"{self.verdict}: {self.record.name} {self.record.type} {self.record.value}"
        if self.verdict == "wrong":
            found = "; ".join(self.found) or "nothing"
            return f"{head} (found: {found})"
        if self.detail:
            return f"{head} ({self.detail})"
        return head


def resolver_for(nameserver: str | None, port: int = 53,
                 timeout: float = 5.0) -> dns.resolver.Resolver:
    """The system's resolver, or one that asks only `nameserver` (an IP address)."""
    if nameserver is None:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [nameserver]
        resolver.port = port
    resolver.lifetime = timeout  # one lookup, all its tries
    resolver.cache = None
    return resolver


def _txt(rdata: object) -> str:
    return b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]


def _host(name: object) -> str:
    return str(name).rstrip(".").lower()


def _tags(value: str) -> dict[str, str]:
    tags = {}
    for part in value.split(";"):
        key, _, val = part.strip().partition("=")
        if key:
            tags[key.strip().lower()] = val.strip()
    return tags


def _judge(record: Record, answer: list[object]) -> Finding:
    if record.type == "MX":
        found = [f"{r.preference} {_host(r.exchange)}" for r in answer]  # type: ignore[attr-defined]
        host = record.value.split(" ")[1]
        ok = any(f.split(" ")[1] == host for f in found)
    elif record.type == "SRV":
        found = [f"{r.priority} {r.weight} {r.port} {_host(r.target)}"  # type: ignore[attr-defined]
                 for r in answer]
        _, _, port, host = record.value.split(" ")
        ok = any(f.split(" ")[2:] == [port, host] for f in found)
    elif record.value.startswith("v=DMARC1"):
        found = [t for t in map(_txt, answer) if t.lower().startswith("v=dmarc1")]
        if not found:
            return Finding(record, "missing")
        want = _tags(record.value)
        have = _tags(found[0])
        ok = len(found) == 1 and all(have.get(k) == v for k, v in want.items() if k != "v")
    else:  # SPF
        found = [t for t in map(_txt, answer) if t.lower().startswith("v=spf1")]
        if not found:
            return Finding(record, "missing")
        ok = found == [record.value]
    return Finding(record, "ok" if ok else "wrong", tuple(found))


def check(records: list[Record], resolver: dns.resolver.Resolver) -> list[Finding]:
    """A finding for each record, in the records' order; one query per name and type."""
    answers: dict[tuple[str, str], list[object] | Finding] = {}
    findings = []
    for record in records:
        key = (record.name, record.type)
        if key not in answers:
            try:
                answers[key] = list(resolver.resolve(record.name + ".", record.type,
                                                     raise_on_no_answer=False) or [])
            except dns.resolver.NXDOMAIN:
                answers[key] = []
            except (dns.exception.DNSException, OSError) as exc:  # no usable answer
                answers[key] = Finding(record, "unanswered", detail=str(exc))
        answer = answers[key]
        if isinstance(answer, Finding):
            findings.append(Finding(record, "unanswered", detail=answer.detail))
        elif not answer:
            findings.append(Finding(record, "missing"))
        else:
            findings.append(_judge(record, answer))
    return findings
