"""Benchmark: validate + plan of 100 domains x 100 mailboxes on the local target, and 2x that.

    python3 bench/bench.py [--repeat 3]

Each measurement runs `mailstate plan` in a fresh process (what CI does on every push) and
reports wall time and peak memory (max RSS), in two situations: the first plan against an
empty server (everything to add) and the everyday one, after an apply, with one mailbox's
quota changed. Targets: under 2 s and 300 MB for 100 x 100, and at most 2.2x the time for
twice the data. Also `validate` of a hostile file of 60,000 unknown keys (under the 1 MiB
limit): under 2 s, and at most 7.2x the time of 10,000 keys. Run by hand; the unit test
(tests/unit/test_validate_linear.py) checks the same with bounds loose enough for a busy CI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate import generate


def run_child(*args: str, codes: tuple[int, ...] = (0, 2)) -> tuple[float, float]:
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
    if code not in codes:
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
        keys = {}
        for n in (10_000, 60_000):
            path = Path(tmp) / f"keys{n}.yaml"
            path.write_text("domain: keys.example\naccount: keys\n" +
                            "".join(f"k{i}: 1\n" for i in range(n)))
            keys[n] = min(run_child("validate", str(path), codes=(1,))[0]
                          for _ in range(args.repeat))
            print(f"validate, {n:,} unknown keys: {keys[n]:.2f} s")
    ok = True
    for label, result in (("first plan", first), ("after apply", steady)):
        ratio = result[200][0] / result[100][0]
        print(f"{label}: 2x data takes {ratio:.2f}x the time")
        ok = ok and result[100][0] < 2.0 and result[100][1] < 300 and ratio <= 2.2
    ok = ok and keys[60_000] < 2.0 and keys[60_000] / keys[10_000] <= 7.2
    print("targets met" if ok else "TARGETS MISSED (2 s, 300 MB, 2.2x; 60,000 keys 2 s)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
