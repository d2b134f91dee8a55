"""Benchmark: adopting a Virtualmin server of 100 domains x 100 mailboxes (local target).

    python3 bench/virtualmin.py [--domains 100] [--mailboxes 100] [--host [--release 13]]

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


def run_child(*args: str) -> tuple[float, float, float]:
    """`python -m mailstate ARGS` in a child: wall seconds, CPU seconds, peak RSS (MB). CPU
    time is the figure to compare on a shared machine, where wall time includes waiting."""
    import os
    import time

    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execv(sys.executable, [sys.executable, "-m", "mailstate", *args])
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 2):
        sys.exit(f"mailstate {' '.join(args)} failed")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024

AUTOREPLY = "Reply-Period: 600\nSubject: Away\n\nI am away.\n"


def _home(root: Path, home: str, uid: int, gid: int, owners: bool) -> None:
    """A home with an empty Maildir, as Virtualmin makes it (owned by its user on a host)."""
    top = root / home.lstrip("/")
    for sub in ("cur", "new", "tmp"):
        (top / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
    if owners:
        import os

        for path in (top, top / "Maildir", *(top / "Maildir" / s for s in ("cur", "new", "tmp"))):
            os.chown(path, uid, gid)


def write_server(root: Path, domains: int, boxes: int, owners: bool = False) -> None:
    """A Virtualmin server: one owner per domain, users named user.prefix, every one with a
    home and a Maildir (chowned to the user with `owners`, on a test host)."""
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
        _home(root, home, gid, gid, owners)
        if owners:
            import os

            (root / home.lstrip("/") / "homes").mkdir()
            os.chown(root / home.lstrip("/") / "homes", gid, gid)
        shadow.append(f"{owner}:{digest}:20000:0:99999:7:::")
        for b in range(boxes - 1):
            uid = gid + 1 + b
            name, local = f"u{b:03d}.{owner}", f"u{b:03d}"
            passwd.append(f"{name}:x:{uid}:{gid}:User {b}:{home}/homes/{local}:/bin/false")
            _home(root, f"{home}/homes/{local}", uid, gid, owners)
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
    (etc / "postfix").mkdir(parents=True, exist_ok=True)
    for name, content in (("passwd", passwd), ("shadow", shadow), ("group", group),
                          ("aliases", aliases), ("postfix/virtual", virtual)):
        with (etc / name).open("a") as f:  # a test host's files already have root & co
            f.write("".join(line + "\n" for line in content))
    if not (etc / "postfix/main.cf").exists():
        (etc / "postfix/main.cf").write_text("virtual_alias_maps = hash:/etc/postfix/virtual\n")


def _on_host(domains: int, boxes: int, tmp: Path, release: str | None) -> None:
    """The same over SSH, on a real test host (root): Postfix, Dovecot and postgrey check
    and reload what the takeover writes."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from ruamel.yaml import YAML

    from tests.testhost.virtualmin import VirtualminHost

    repo = tmp / "repo"
    with VirtualminHost("vbench", builder=lambda r: write_server(r, domains, boxes, owners=True),
                        release=release) as host:
        target = f"ssh://root@{host.ip}"
        seconds, cpu, mb = run_child("import", "--from", "virtualmin", "--target", target,
                                     "--known-hosts", str(host.known_hosts_path), "--identity",
                                     str(host.key_path), "--server", "vm", "--out", str(repo))
        print(f"{domains} domains x {boxes} mailboxes, over SSH on a Debian {host.release} "
              "test host")
        print(f"  {'import':16s} {seconds:6.2f} s wall {cpu:6.2f} s CPU {mb:6.0f} MB")
        yaml = YAML()
        config = yaml.load((repo / "mailstate.yaml").read_text())
        config["servers"]["vm"]["commands"] = {
            k: host.commands[k] for k in ("postfix_reload", "dovecot_reload", "postgrey_restart")}
        with (repo / "mailstate.yaml").open("w") as f:
            yaml.dump(config, f)
        for label, cli in (("plan (takeover)", ["plan"]), ("apply", ["apply", "--auto-approve"]),
                           ("plan (after)", ["plan", "--detailed-exitcode"])):
            seconds, cpu, mb = _in(repo, cli)
            print(f"  {label:16s} {seconds:6.2f} s wall {cpu:6.2f} s CPU {mb:6.0f} MB")


def _in(repo: Path, cli: list[str]) -> tuple[float, float, float]:
    import os

    here = os.getcwd()
    os.chdir(repo)
    try:
        return run_child(*cli)
    finally:
        os.chdir(here)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--domains", type=int, default=100)
    parser.add_argument("--mailboxes", type=int, default=100)
    parser.add_argument("--host", action="store_true", help="over SSH on a test host (root)")
    parser.add_argument("--release", help="the test host's Debian release (12, 13; default: "
                        "the machine's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.host:
            _on_host(args.domains, args.mailboxes, Path(tmp), args.release)
            return
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
            seconds, cpu, mb = run_child(*cli)
            print(f"  {label:16s} {seconds:6.2f} s wall {cpu:6.2f} s CPU {mb:6.0f} MB")


if __name__ == "__main__":
    main()
