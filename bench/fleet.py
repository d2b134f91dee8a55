"""Benchmark: plan and apply of the same change on 1, 2, 4 and 8 real test hosts at once.

    sudo python3 bench/fleet.py [--domains 10] [--mailboxes 20] [--repeat 3]

Starts 8 test hosts (tests/testhost: sshd, Postfix, Dovecot, postgrey; needs root and the
Debian packages), gives each the same repository content (DOMAINS x MAILBOXES, as
bench/generate.py makes them) and applies it once. Then, for N = 1, 2, 4, 8 servers: one
mailbox's quota changes on each of the N servers, and `mailstate plan` and `mailstate apply
--auto-approve` each run in a fresh process over SSH (wall time and the process's CPU time,
best of REPEAT; the CPU time is what the run itself costs, whatever else the machine does,
since wall times on a shared machine move with its load). The target:
8 hosts within 2x the time of one. Run by hand; not a timed test.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from generate import domain_file  # noqa: E402

from tests.integration.mail import dump_yaml  # noqa: E402
from tests.testhost import TestHost  # noqa: E402

COUNTS = (1, 2, 4, 8)


def server_entry(host: TestHost) -> dict[str, object]:
    return {"target": f"ssh://root@{host.ip}", "known_hosts": str(host.known_hosts_path),
            "identity": str(host.key_path),
            "commands": {k: host.commands[k] for k in
                         ("postfix_reload", "dovecot_reload", "postgrey_restart")}}


def write_repo(repo: Path, hosts: list[TestHost], domains: int, mailboxes: int) -> None:
    (repo / "domains").mkdir(parents=True, exist_ok=True)
    names = [f"bench{i}" for i in range(len(hosts))]
    accounts = {f"cust{s}{n:04d}": {"plan": "big", "domains": [f"cust{s}{n:04d}.example",
                                                               f"cust{s}{n:04d}.example.net"]}
                for s in range(len(hosts)) for n in range(domains)}
    (repo / "mailstate.yaml").write_text(dump_yaml({
        "servers": {name: server_entry(h) for name, h in zip(names, hosts, strict=True)},
        "plans": {"big": {"mailboxes": None, "mail_quota": None, "domains": None,
                          "domain_aliases": None}},
        "accounts": accounts}))
    for s, name in enumerate(names):
        for n in range(domains):
            # the same content on every server, under names of its own (logins are per server,
            # domains are unique in a repository)
            text = domain_file(n, mailboxes).replace("server: bench", f"server: {name}")
            text = text.replace("cust", f"cust{s}")
            text = text.replace("    quota: 1G\n", "    quota: 1G\n    welcome: false\n")
            (repo / "domains" / f"cust{s}{n:04d}.example.yaml").write_text(text)


def change(repo: Path, servers: int, quota: str) -> None:
    """One mailbox's quota on each of the first `servers` servers."""
    for s in range(servers):
        path = repo / "domains" / f"cust{s}0000.example.yaml"
        path.write_text(re.sub(r"quota: \S+", f"quota: {quota}", path.read_text(), count=1))


def timed(repo: Path, *args: str, servers: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one `mailstate` run on `servers`."""
    names = [a for s in range(servers) for a in ("--server", f"bench{s}")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mailstate", *args, *names, "-q"], cwd=repo,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode not in (0, 2):
        sys.exit(f"mailstate {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domains", type=int, default=10)
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    hosts: list[TestHost] = []
    try:
        start = time.perf_counter()
        for i in range(max(COUNTS)):
            hosts.append(TestHost(f"bench{i}").start())
        print(f"{len(hosts)} test hosts up in {time.perf_counter() - start:.1f} s")
        with tempfile.TemporaryDirectory() as tmp:
            repo = Path(tmp)
            write_repo(repo, hosts, args.domains, args.mailboxes)
            start = time.perf_counter()
            for attempt in (1, 2, 3):  # setup, not measured: a test host's postgrey restart
                # can time out on a machine under heavy load; the next apply finishes it
                code = subprocess.run([sys.executable, "-m", "mailstate", "apply", "-q",
                                       "--auto-approve", "--force"], cwd=repo,
                                      stdout=subprocess.DEVNULL, check=False).returncode
                if code == 0:
                    break
                print(f"first apply, attempt {attempt}: exit {code}; again")
            print(f"first apply of {args.domains} domains x {args.mailboxes} mailboxes on "
                  f"{len(hosts)} hosts: {time.perf_counter() - start:.1f} s")
            results: dict[int, tuple[float, float]] = {}
            print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            quotas = (f"{1000 + i}M" for i in range(1, 1000))  # a new value every round
            for n in COUNTS:
                plans, applies = [], []
                for _ in range(args.repeat):
                    change(repo, n, next(quotas))
                    plans.append(timed(repo, "plan", servers=n))
                    applies.append(timed(repo, "apply", "--auto-approve", servers=n))
                results[n] = (min(p[0] for p in plans), min(a[0] for a in applies))
                print(f"{n} host{'s' if n > 1 else ' '}: plan {results[n][0]:.2f} s "
                      f"(cpu {min(p[1] for p in plans):.2f} s), apply {results[n][1]:.2f} s "
                      f"(cpu {min(a[1] for a in applies):.2f} s)")
    finally:
        for host in reversed(hosts):
            host.stop()
    ratio = max(results[8][0] / results[1][0], results[8][1] / results[1][1])
    print(f"8 hosts / 1 host: plan {results[8][0] / results[1][0]:.2f}x, apply "
          f"{results[8][1] / results[1][1]:.2f}x")
    print("target met (8 hosts within 2x one)" if ratio <= 2 else "TARGET MISSED (2x)")
    sys.exit(0 if ratio <= 2 else 1)


if __name__ == "__main__":
    main()
