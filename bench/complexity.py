"""Each hot path at n and 4n: the ratio says linear (about 4) or quadratic (about 16).

    python3 bench/complexity.py [--n 1000]

In-process, best of 3 each: reading one YAML file of n mailboxes, validating a file whose n
logins each draw a warning (every warning looks its position up), the forwarding-loop search
on a chain of n forwards, render and parse of a server of n mailboxes, and the plan of n
changed mailboxes. Run by bench/bench.py (or alone); not a timed test.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import HASH, domain_file  # noqa: E402


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best of `repeat`, with the cyclic collector off as in the `mailstate` command."""
    times = []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        gc.enable()
    return min(times)


def cases(tmp: Path) -> dict[str, Callable[[int], Callable[[], object]]]:
    from mailstate.config import policy
    from mailstate.config.validation import run
    from mailstate.config.yaml_reader import read_yaml
    from mailstate.files.parse import parse
    from mailstate.files.render import render
    from mailstate.model.layout import Facts, Layout
    from mailstate.plan import diff_states

    def yaml_file(n: int) -> Callable[[], object]:
        path = tmp / f"y{n}.yaml"
        path.write_text(domain_file(0, n))
        return lambda: read_yaml(path)

    def warnings(n: int) -> Callable[[], object]:
        path = tmp / f"w{n}.yaml"
        boxes = "".join(f"  user{i}:\n    name: U\n    password: \"{HASH}\"\n" for i in range(n))
        path.write_text(f"domain: w.example\naccount: w\nplan: extended\nadmin: user0\n"
                        f"mailboxes:\n{boxes}")
        return lambda: run([str(path)])

    def chain(n: int) -> Callable[[], object]:
        edges = {f"a{i}@x.example": {f"a{i + 1}@x.example"} for i in range(n)}
        edges[f"a{n}@x.example"] = {"a0@x.example"}
        return lambda: policy._cycles(edges)

    def states(n: int):  # type: ignore[no-untyped-def]
        path = tmp / f"s{n}.yaml"
        path.write_text(domain_file(0, n).replace("cust0000", "cust"))
        plans = "plans:\n  big: {mailboxes: 100000, mail_quota: 100000G, domains: 10}\n"
        (tmp / f"s{n}").mkdir(exist_ok=True)
        (tmp / f"s{n}" / "mailstate.yaml").write_text(
            f"{plans}servers:\n  bench: {{target: 'local:{tmp}/srv'}}\naccounts:\n"
            "  cust: {plan: big, domains: [cust.example, cust.example.net]}\n")
        (tmp / f"s{n}" / "domains").mkdir(exist_ok=True)
        (tmp / f"s{n}" / "domains" / "cust.example.yaml").write_text(path.read_text())
        desired, issues = run([str(tmp / f"s{n}")])
        assert desired is not None, issues
        return desired.servers["bench"]

    def render_parse(n: int) -> Callable[[], object]:
        state = states(n)

        def go() -> object:
            files = {f.path: f.content for f in render(state, Layout(), Facts()).files}
            return parse(files, Layout(), Facts())
        return go

    def plan_changes(n: int) -> Callable[[], object]:
        state = states(n)
        domain = next(iter(state.domains.values()))
        changed = {k: v.model_copy(update={"quota": v.quota * 2})
                   for k, v in domain.mailboxes.items()}
        other = state.model_copy(update={"domains": {
            domain.name: domain.model_copy(update={"mailboxes": changed})}})
        return lambda: diff_states(state, other)

    return {"read one YAML file of n mailboxes": yaml_file,
            "validate n mailboxes, a warning each": warnings,
            "forwarding-loop search, chain of n": chain,
            "render + parse, n mailboxes": render_parse,
            "plan of n changed mailboxes": plan_changes}


def measure(n: int) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = []
        for name, make in cases(Path(tmp)).items():
            small, large = best(make(n)), best(make(4 * n))
            out.append((name, small, large))
        return out


def report(n: int, rows: list[tuple[str, float, float]]) -> list[str]:
    lines = [f"| hot path | n = {n:,} | 4n | ratio (linear: 4) |", "|---|---|---|---|"]
    lines += [f"| {name} | {a:.3f} s | {b:.3f} s | {b / a:.1f} |" for name, a, b in rows]
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    print("\n".join(report(args.n, measure(args.n))))
