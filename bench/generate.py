"""Make a provider repository of N domains x M mailboxes for the benchmark.

    python3 bench/generate.py OUT_DIR [--domains 100] [--mailboxes 100]

Every tenth mailbox forwards, every twentieth has a vacation, every domain has a domain alias
and a forward-only alias: roughly what a real server carries. One hash is reused (hashing is
not what is measured).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HASH = ("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$cA5B6D1nTIlRKuWcU2qt9Q$"
        "y8AONqAfifKKZVjyxj9nHQu2IzUJDKM9StmxylEpdic")


def domain_file(n: int, mailboxes: int, welcome: bool = True) -> str:
    account = f"cust{n:04d}"
    lines = [f"domain: {account}.example", f"account: {account}", "server: bench",
             f"domain_aliases: [{account}.example.net]", "mailboxes:"]
    for i in range(mailboxes):
        login = account if i == 0 else f"{account}{i:04d}"
        lines += [f"  {login}:", f"    name: User {i}", f'    password: "{HASH}"',
                  "    quota: 1G", f"    addresses: [user{i}, contact{i}]"]
        if not welcome:
            lines.append("    welcome: false")
        if i % 10 == 1:
            lines += ["    forward:", f"      to: [user{i}@elsewhere.example]",
                      "      keep_copy: true"]
        if i % 20 == 2:
            lines += ["    vacation:", "      subject: Away", "      message: |",
                      "        I am away.", "      interval: 10m"]
    lines += ["aliases:", "  sales: [sales@elsewhere.example]"]
    return "\n".join(lines) + "\n"


def generate(out: Path, domains: int, mailboxes: int, server: str | None = None,
             welcome: bool = True) -> None:
    """`server`: the YAML of the server's settings (indented 4), default a local target.
    `welcome`: whether new mailboxes get a welcome mail (one `sendmail` each on a server)."""
    (out / "domains").mkdir(parents=True, exist_ok=True)
    accounts = "\n".join(f"  cust{n:04d}: {{plan: big, domains: [cust{n:04d}.example, "
                         f"cust{n:04d}.example.net]}}"
                         for n in range(domains))
    server = server or f"    target: local:{out / 'server'}\n"
    (out / "mailstate.yaml").write_text(
        "plans:\n  big: {mailboxes: 1000, mail_quota: 2000G, domains: 10}\n"
        f"servers:\n  bench:\n{server}"
        f"accounts:\n{accounts}\n")
    for n in range(domains):
        path = out / "domains" / f"cust{n:04d}.example.yaml"
        path.write_text(domain_file(n, mailboxes, welcome))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--domains", type=int, default=100)
    parser.add_argument("--mailboxes", type=int, default=100)
    args = parser.parse_args()
    generate(args.out, args.domains, args.mailboxes)
