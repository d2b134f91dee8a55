"""Benchmark: adopting a Virtualmin server of 100 domains x 100 mailboxes (local target).

    python3 bench/virtualmin.py [--domains 100] [--mailboxes 100] [--target ssh://...]

Writes a server root laid out as Virtualmin leaves it (every tenth mailbox forwards, every
twentieth has an autoreply, every domain has a copy-mode alias domain), then times, each in a
fresh process: `import --from virtualmin`, `validate`, the first `plan` (the takeover),
`apply`, and the second `plan`. On the local target server programs (postmap, doveconf,
reloads) are skipped. Run by hand; not a timed test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from passlib.hash import sha512_crypt

sys.path.insert(0, str(Path(__file__).parent))
from bench import run_child

AUTOREPLY = "Reply-Period: 600\nSubject: Away\n\nI am away.\n"


def write_server(root: Path, domains: int, boxes: int) -> None:
    """A Virtualmin server: one owner per domain, users named user.prefix."""
    digest = sha512_crypt.using(rounds=5000).hash("Bench-pass1")
    passwd, shadow, group, virtual, aliases = [], [], [], [], []
    records = root / "etc/webmin/virtual-server/domains"
    records.mkdir(parents=True)
    uid = 30000
    for d in range(domains):
        owner, dom, gid = f"cust{d:03d}", f"cust{d:03d}.example", 30000 + d * (boxes + 1)
        home = f"/home/{owner}"
        (records / str(1000 + d)).write_text(
            f"id={1000 + d}\ndom={dom}\nuser={owner}\ngid={gid}\nhome={home}\nprefix={owner}\n"
            f"mail=1\nemailto=owner@{dom}\nmailboxlimit={boxes + 1}\n")
        (records / str(5000 + d)).write_text(
            f"id={5000 + d}\ndom=alias{d:03d}.example\nuser={owner}\ngid={gid}\nmail=1\n"
            f"alias={1000 + d}\nparent={1000 + d}\naliascopy=1\n")
        group.append(f"{owner}:x:{gid}:")
        lines = [f"{dom}\t{dom}", f"{owner}@{dom}\t{owner}"]
        passwd.append(f"{owner}:x:{gid}:{gid}:Owner {d}:{home}:/bin/false")
        shadow.append(f"{owner}:{digest}:20000:0:99999:7:::")
        for b in range(boxes - 1):
            uid = gid + 1 + b
            name, local = f"u{b:03d}.{owner}", f"u{b:03d}"
            passwd.append(f"{name}:x:{uid}:{gid}:User {b}:{home}/homes/{local}:/bin/false")
            shadow.append(f"{name}:{digest}:20000:0:99999:7:::")
            if b % 10 == 0:
                aliases.append(f"{local}-{dom}: \\{name},{local}@elsewhere.example")
                lines.append(f"{local}@{dom}\t{local}-{dom}")
            elif b % 20 == 5:
                reply = f"{home}/autoreply-{local}@{dom}.txt"
                (root / reply.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
                (root / reply.lstrip("/")).write_text(AUTOREPLY)
                aliases.append(f'{local}-{dom}: \\{name},"|/etc/webmin/virtual-server/'
                               f'autoreply.pl {reply} {name}"')
                lines.append(f"{local}@{dom}\t{local}-{dom}")
            else:
                lines.append(f"{local}@{dom}\t{name}")
        virtual += [*lines, f"alias{d:03d}.example\talias{d:03d}.example"]
        virtual += [line.replace(f"@{dom}\t", f"@alias{d:03d}.example\t")
                    for line in lines[1:]]
    etc = root / "etc"
    (etc / "postfix").mkdir(parents=True)
    for name, content in (("passwd", passwd), ("shadow", shadow), ("group", group),
                          ("aliases", aliases), ("postfix/virtual", virtual)):
        (etc / name).write_text("".join(line + "\n" for line in content))
    (etc / "postfix/main.cf").write_text("virtual_alias_maps = hash:/etc/postfix/virtual\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--domains", type=int, default=100)
    parser.add_argument("--mailboxes", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, repo = Path(tmp) / "server", Path(tmp) / "repo"
        write_server(root, args.domains, args.mailboxes)
        steps = [
            ("import", ["import", "--from", "virtualmin", "--target", f"local:{root}",
                        "--server", "vm", "--out", str(repo)]),
            ("validate", ["validate", str(repo)]),
            ("plan (takeover)", ["plan", str(repo)]),
            ("apply", ["apply", str(repo), "--auto-approve"]),
            ("plan (after)", ["plan", str(repo), "--detailed-exitcode"]),
        ]
        print(f"{args.domains} domains x {args.mailboxes} mailboxes")
        for label, cli in steps:
            seconds, mb = run_child(*cli)
            print(f"  {label:16s} {seconds:6.2f} s  {mb:6.0f} MB")


if __name__ == "__main__":
    main()
