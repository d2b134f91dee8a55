"""Benchmark: validate + plan of 100 domains x 100 mailboxes on the local target, and 2x that.

    python3 bench/bench.py [--repeat 3]

Each measurement runs `mailstate plan` in a fresh process (what CI does on every push) and
reports wall time and peak memory (max RSS), in two situations: the first plan against an
empty server (everything to add) and the everyday one, after an apply, with one mailbox's
quota changed. Targets: under 2 s and 300 MB for 100 x 100, and at most 2.2x the time for
twice the data. Run by hand; not a timed test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate import generate


def run_child(*args: str) -> tuple[float, float]:
    """Run `python -m mailstate ARGS` in a child; wall seconds and the child's peak RSS (MB)."""
    import os

    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execv(sys.executable, [sys.executable, "-m", "mailstate", *args])
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 2):
        sys.exit(f"mailstate {' '.join(args)} failed with exit {code}")
    return seconds, usage.ru_maxrss / 1024


def measure(repo: Path, repeat: int) -> tuple[float, float]:
    """Best wall time and worst peak memory of `plan` over `repeat` runs."""
    runs = [run_child("plan", str(repo), "--format", "json") for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    first, steady = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for domains in (100, 200):
            repo = Path(tmp) / f"repo{domains}"
            generate(repo, domains, 100)
            first[domains] = measure(repo, args.repeat)
            run_child("apply", str(repo), "--auto-approve")
            path = repo / "domains" / "cust0000.example.yaml"
            path.write_text(path.read_text().replace("quota: 1G", "quota: 2G", 1))
            steady[domains] = measure(repo, args.repeat)
            for label, result in (("first plan", first), ("after apply", steady)):
                seconds, mb = result[domains]
                print(f"{domains} domains x 100 mailboxes, {label}: {seconds:.2f} s, "
                      f"peak {mb:.0f} MB")
    ok = True
    for label, result in (("first plan", first), ("after apply", steady)):
        ratio = result[200][0] / result[100][0]
        print(f"{label}: 2x data takes {ratio:.2f}x the time")
        ok = ok and result[100][0] < 2.0 and result[100][1] < 300 and ratio <= 2.2
    print("targets met" if ok else "TARGETS MISSED (2 s, 300 MB, 2.2x)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
