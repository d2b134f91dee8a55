"""What a change costs: a pull request's plan of one file, and adding one mailbox.

Used by bench.py (local target). A pull request's plan runs on a CI runner in a fresh process:
once with main's records restored (a copy of the cache folder as main's last run left it:
the plan cache's record and the per-file records), once with none (an empty folder).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from generate import HASH, generate

ADD_SIZES = [(25, 100), (150, 100)]  # 2,500 and 15,000 mailboxes

Runner = Callable[..., tuple[float, float, str]]  # bench.run_child


def pull_request_plans(ms: list[str], repo: Path, main_cache: Path, empty: Path,
                       run_child: Runner) -> dict[str, tuple[float, float]]:
    """The plan of a repository whose one file changed: (seconds, peak MB) per case."""
    restored = main_cache.with_name(main_cache.name + "-restored")
    shutil.copytree(main_cache, restored)
    empty.mkdir(mode=0o700)
    return {"PR plan, one file, main's records restored":
            run_child([*ms, "plan", str(repo)], cache=restored)[:2],
            "PR plan, one file, no records": run_child([*ms, "plan", str(repo)], cache=empty)[:2]}


def add_mailbox(repo: Path, login: str) -> None:
    """One more mailbox in the first domain file (before its aliases)."""
    path = sorted((repo / "domains").glob("*.yaml"))[0]
    text = path.read_text()
    new = f"  {login}:\n    name: New user\n    password: \"{HASH}\"\n    welcome: false\n"
    path.write_text(text.replace("aliases:\n", new + "aliases:\n", 1))


def add_one_part(tmp: Path, ms: list[str], run_child: Runner) -> dict:
    results = {}
    for domains, boxes in ADD_SIZES:
        n = domains * boxes
        repo = tmp / f"add{n}"
        generate(repo, domains, boxes, welcome=False)
        run_child([*ms, "apply", str(repo), "--auto-approve"])
        row = {"plan (no-op)": run_child([*ms, "plan", str(repo)])[:2]}
        add_mailbox(repo, "cust00009999")
        row["apply (add one mailbox)"] = run_child([*ms, "apply", str(repo),
                                                    "--auto-approve"])[:2]
        results[str(n)] = row
        shutil.rmtree(repo)
        print(f"  add one at {n}: " + ", ".join(f"{k} {v[0]:.2f} s" for k, v in row.items()),
              file=sys.stderr, flush=True)
    return results


def add_one_report(results: dict) -> list[str]:
    out = ["| mailboxes on the server | no-op plan | apply adding one mailbox | add / no-op |",
           "|---|---|---|---|"]
    for n, row in results.items():
        noop, add = row["plan (no-op)"], row["apply (add one mailbox)"]
        out.append(f"| {int(n):,} | {noop[0]:.2f} s, {noop[1]:.0f} MB | {add[0]:.2f} s, "
                   f"{add[1]:.0f} MB | {add[0] / noop[0]:.2f}x |")
    return out
