"""Benchmark: what users wait for, each case beside its floor, ratios from one run.

    python3 bench/bench.py [--repeat 3] [--local-only | --ssh-only] [--json FILE] [--n 1000]

Hot paths (bench/complexity.py, in-process): each at n and 4n, so a quadratic one shows as a
ratio near 16 instead of 4.

Local target (no server), domains of 1,000 mailboxes: `validate`, the first `plan` (empty
server), the first `apply` and a no-op `plan` after it, a pull request's plan of one changed
file on a CI runner with main's records restored and with none, and the one-change apply, at
10^4, 2*10^4 and 10^5 mailboxes, with each size's time as a multiple of the 10^4 time (linear:
2x and 10x), and the peak memory of each. Then the adding of one mailbox to a server of 2,500
and 15,000 mailboxes (domains of 100), beside the no-op plan of the same repository
(bench/change_cost.py).

Over SSH against a real test host (tests/testhost; needs root and the Debian packages of
.ci/install-debian-packages.sh), at 1 domain x 10 mailboxes and 100 x 100: the first apply,
a no-op plan and a one-change apply (one quota), each `mailstate` command in a fresh process
as a user runs it, beside a bare paramiko connect plus one `tar` of the same managed files
(bench/peer.py) in the same run; and the first and one-change applies once more step by step
(bench/steps.py: client steps, then the server's own steps as server-activate.sh times them).
The local sizes and the 100 x 100 mailboxes have `welcome: false`: a welcome mail is a file
in the upload and one `sendmail` per new mailbox on the server; the 10-mailbox case over SSH
measures them.

Every measurement is wall time of a fresh process, the best of --repeat runs (10^5 and the
first applies: one run). Run by hand; not a timed test. Prints a report (markdown) and
exits 0; the targets are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from change_cost import add_one_part, add_one_report, pull_request_plans  # noqa: E402
from generate import generate  # noqa: E402

LOCAL_SIZES = [(10, 1000), (20, 1000), (100, 1000)]
SSH_SIZES = [(1, 10), (100, 100)]


def mailstate_command() -> list[str]:
    """The console script next to this Python (what users run), else `python -m mailstate`."""
    script = Path(sys.executable).parent / "mailstate"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mailstate"]


def run_child(argv: list[str], cwd: Path | None = None,
              cache: Path | None = None) -> tuple[float, float, str]:
    """Run a command in a child; wall seconds, the child's peak RSS (MB), its stdout.
    `cache`: the child's MAILSTATE_CACHE_DIR (default: this run's)."""
    env = {**os.environ, "MAILSTATE_CACHE_DIR": str(cache)} if cache is not None else None
    # A child's ru_maxrss starts from its parent's size at the fork (Linux keeps the larger
    # of the old and the new image across exec), so a child of this process would never
    # show less than this process holds: GNU time, itself small, reports the child's own.
    timer = Path("/usr/bin/time")
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as peak:
        wrapped = [str(timer), "-f", "%M", "-o", peak.name, *argv] if timer.exists() else argv
        proc = subprocess.Popen(wrapped, stdout=out, stderr=err, cwd=cwd, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
        measured = peak.read().split()
    if proc.returncode not in (0, 2):
        sys.exit(f"{' '.join(argv)} failed with exit {proc.returncode}:\n{stderr[-3000:]}")
    kilobytes = int(measured[-1]) if measured and measured[-1].isdigit() else usage.ru_maxrss
    return seconds, kilobytes / 1024, stdout


def best(argv: list[str], repeat: int) -> tuple[float, float]:
    runs = [run_child(argv) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def change_quota(repo: Path, to: str) -> None:
    path = repo / "domains" / "cust0000.example.yaml"
    text = path.read_text()
    path.write_text(text.replace("quota: 1G", f"quota: {to}", 1) if to != "1G"
                    else text.replace("quota: 2G", "quota: 1G", 1))


# ---------------------------------------------------------------- local target


def local_part(tmp: Path, repeat: int) -> dict:
    ms = mailstate_command()
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for domains, boxes in LOCAL_SIZES:
        n = domains * boxes
        rounds = 1 if n >= 100_000 else repeat
        repo = tmp / f"local{n}"
        generate(repo, domains, boxes, welcome=False)
        row = {"validate": best([*ms, "validate", str(repo)], rounds),
               "plan (first)": best([*ms, "plan", str(repo), "--format", "json"], rounds)}
        row["apply (first)"] = run_child([*ms, "apply", str(repo), "--auto-approve"])[:2]
        row["plan (no-op)"] = best([*ms, "plan", str(repo)], rounds)
        row["plan (no-op, --no-cache)"] = best([*ms, "plan", str(repo), "--no-cache"], rounds)
        main_cache = tmp / f"main-cache{n}"  # what a CI runner restores: main's last records
        shutil.copytree(os.environ["MAILSTATE_CACHE_DIR"], main_cache)
        change_quota(repo, "2G")  # a pull request that changes one file
        row.update(pull_request_plans(ms, repo, main_cache, tmp / f"empty-cache{n}",
                                      run_child))
        row["apply (one change)"] = run_child([*ms, "apply", str(repo), "--auto-approve"])[:2]
        results[str(n)] = row
        shutil.rmtree(repo)
        print(f"  local {n}: " + ", ".join(f"{k} {v[0]:.2f} s" for k, v in row.items()),
              file=sys.stderr, flush=True)
    return results


def local_report(results: dict) -> list[str]:
    sizes = list(results)
    cases = list(results[sizes[0]])
    out = ["| case | " + " | ".join(f"{int(s):,} mailboxes" for s in sizes) + " | "
           + " | ".join(f"{int(s) // int(sizes[0])}x data" for s in sizes[1:]) + " |",
           "|---|" + "---|" * (2 * len(sizes) - 1)]
    for case in cases:
        cells = [f"{results[s][case][0]:.2f} s, {results[s][case][1]:.0f} MB" for s in sizes]
        ratios = [f"{results[s][case][0] / results[sizes[0]][case][0]:.2f}x the time"
                  for s in sizes[1:]]
        out.append(f"| {case} | " + " | ".join(cells + ratios) + " |")
    out.append("")
    for size in sizes:  # what a change costs beside the no-op plan, same run and size
        row = results[size]
        noop = row["plan (no-op)"][0]
        parts = [f"{case} {row[case][0] / noop:.2f}x" for case in row
                 if case.startswith(("PR plan", "apply (one change)"))]
        out.append(f"- {int(size):,} mailboxes, as a multiple of the no-op plan: "
                   + ", ".join(parts) + "; peak memory of all cases "
                   f"{max(v[1] for v in row.values()):.0f} MB.")
    return out


# ---------------------------------------------------------------- SSH, real test host


def ssh_part(tmp: Path, repeat: int) -> dict:
    sys.path.insert(0, str(HERE.parent))
    from tests.testhost import TestHost, missing_requirements

    missing = missing_requirements()
    if missing:
        print(f"SSH part skipped: test hosts need {', '.join(missing)}", file=sys.stderr)
        return {}
    ms = mailstate_command()
    py = sys.executable
    results: dict = {}
    for domains, boxes in SSH_SIZES:
        n = domains * boxes
        with TestHost(f"bench{n}") as host:
            server = (f"    target: ssh://root@{host.ip}\n"
                      f"    known_hosts: {host.known_hosts_path}\n"
                      f"    identity: {host.key_path}\n    commands:\n"
                      + "".join(f"      {k}: '{host.commands[k]}'\n" for k in
                                ("postfix_reload", "dovecot_reload", "postgrey_restart")))
            repo = tmp / f"ssh{n}"
            generate(repo, domains, boxes, server, welcome=n <= 100)
            row: dict = {}
            # A server one applies to has served SSH before: one bare connect first, or the
            # first apply also pays the just-started test host's cold sshd (1-4 s here).
            run_child([py, str(HERE / "peer.py"), f"ssh://root@{host.ip}", str(host.key_path),
                       str(host.known_hosts_path), "/etc/hostname"])
            wall, _, out = run_child([py, str(HERE / "steps.py"), "apply", str(repo)])
            row["first apply"] = {"wall": wall, **json.loads(out)}
            manifest = json.loads(host.exec(["cat", "/var/lib/mailstate/manifest.json"]).stdout)
            paths = [*manifest["files"], "/var/lib/mailstate/manifest.json",
                     "/var/lib/mailstate/state.json"]
            peer_argv = [py, str(HERE / "peer.py"), f"ssh://root@{host.ip}",
                         str(host.key_path), str(host.known_hosts_path), *paths]
            plans, cold, peers = [], [], []
            for _ in range(repeat):  # interleaved: all see the same load
                plans.append(run_child([*ms, "plan", str(repo)])[0])
                cold.append(run_child([*ms, "plan", str(repo), "--no-cache"])[0])
                wall, _, out = run_child(peer_argv)
                peers.append((wall, json.loads(out)))
            row["no-op plan"] = min(plans)
            row["no-op plan, --no-cache"] = min(cold)
            row["peer"] = min(peers, key=lambda p: p[0])
            wall, _, out = run_child([py, str(HERE / "steps.py"), "plan", str(repo)])
            row["no-op plan steps"] = {"wall": wall, **json.loads(out)}
            changes = []
            for i in range(repeat):
                change_quota(repo, "2G" if i % 2 == 0 else "1G")
                changes.append(run_child([*ms, "apply", str(repo), "--auto-approve"])[0])
            row["one-change apply"] = min(changes)
            change_quota(repo, "2G" if repeat % 2 == 0 else "1G")
            wall, _, out = run_child([py, str(HERE / "steps.py"), "apply", str(repo)])
            row["one-change apply steps"] = {"wall": wall, **json.loads(out)}
            results[f"{domains} x {boxes}"] = row
            print(f"  ssh {domains} x {boxes}: first apply {row['first apply']['wall']:.2f} s, "
                  f"no-op plan {row['no-op plan']:.2f} s, peer {row['peer'][0]:.2f} s, "
                  f"one change {row['one-change apply']:.2f} s", file=sys.stderr, flush=True)
    return results


def ssh_report(results: dict) -> list[str]:
    out = ["| size | first apply | no-op plan | bare paramiko read | plan / read | "
           "no-op plan, --no-cache | one-change apply | first / one change |",
           "|---|---|---|---|---|---|---|---|"]
    for size, r in results.items():
        peer = r["peer"]
        out.append(f"| {size} | {r['first apply']['wall']:.2f} s | {r['no-op plan']:.2f} s | "
                   f"{peer[0]:.2f} s ({peer[1]['bytes'] / 1e6:.1f} MB) | "
                   f"{r['no-op plan'] / peer[0]:.2f}x | {r['no-op plan, --no-cache']:.2f} s | "
                   f"{r['one-change apply']:.2f} s | "
                   f"{r['first apply']['wall'] / r['one-change apply']:.2f}x |")
    for size, r in results.items():
        p = r["peer"][1]
        out += ["", f"**{size}**, bare read: imports {p['imports']:.2f} s, connect "
                f"{p['connect']:.2f} s, tar {p['read']:.2f} s.", ""]
        out += ["| step | first apply | no-op plan | one-change apply |", "|---|---|---|---|"]
        runs = [r["first apply"], r["no-op plan steps"], r["one-change apply steps"]]
        names = list(dict.fromkeys(k for run in runs for k in run["times"]))
        for name in names:
            out.append(f"| {name} | " + " | ".join(
                f"{run['times'][name]:.3f}" if name in run["times"] else "" for run in runs)
                + " |")
        server = list(dict.fromkeys(k for run in runs for k in run["server"]))
        for name in server:
            out.append(f"| server: {name} | " + " | ".join(
                f"{run['server'][name]:.3f}" if name in run["server"] else "" for run in runs)
                + " |")
        out.append("| wall (fresh process) | " + " | ".join(f"{run['wall']:.3f}" for run in runs)
                   + " |")
    return out


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    debian = Path("/etc/debian_version").read_text().strip() \
        if Path("/etc/debian_version").exists() else "?"
    return (f"{os.cpu_count()} cores ({cpu}), Debian {debian}, Python "
            f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--local-only", action="store_true")
    which.add_argument("--ssh-only", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--n", type=int, default=1000, help="n of the hot-path section")
    args = parser.parse_args()
    report = [f"Machine: {machine()} at the start."]
    raw: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        # a plan cache of this run's own (mailstate.guards.plan_cache), not the user's
        os.environ["MAILSTATE_CACHE_DIR"] = str(Path(tmp) / "plan-cache")
        if not args.ssh_only:
            import complexity

            rows = complexity.measure(args.n)
            raw["hot paths"] = rows
            report += ["", "### Hot paths at n and 4n (in-process)", "",
                       *complexity.report(args.n, rows)]
            raw["local"] = local_part(Path(tmp), args.repeat)
            report += ["", "### Local target", "", *local_report(raw["local"])]
            raw["add one mailbox"] = add_one_part(Path(tmp), mailstate_command(), run_child)
            report += ["", "### Adding one mailbox (local target)", "",
                       *add_one_report(raw["add one mailbox"])]
        if not args.local_only:
            raw["ssh"] = ssh_part(Path(tmp), args.repeat)
            if raw["ssh"]:
                report += ["", "### Over SSH, real test host", "", *ssh_report(raw["ssh"])]
    report += ["", f"Load average at the end: {os.getloadavg()[0]:.1f}."]
    print("\n".join(report))
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
