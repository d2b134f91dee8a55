"""Bring a test host up by hand: `sudo python -m tests.testhost up [--name dev] [--release 13]`.

Prints how to reach it, then waits until Ctrl-C (or SIGTERM) and stops it cleanly.
`python -m tests.testhost root --release 13` builds (or checks) the cached Debian 13 root.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

from . import rootfs
from .host import TestHost, missing_requirements
from .netns import machine_lock, reap_stale_hosts


def _root(release: str) -> int:
    started = time.monotonic()
    try:
        root = rootfs.ensure_root(release, log=True)
    except rootfs.RootError as exc:
        print(f"cannot build the Debian {release} root: {exc}", file=sys.stderr)
        return 1
    print(f"Debian {release} root: {root} ({time.monotonic() - started:.1f} s)")
    return 0


def _up(name: str, release: str | None) -> int:
    missing = missing_requirements(release)
    if missing:
        print("cannot start a test host; missing: " + ", ".join(missing), file=sys.stderr)
        return 2
    done = threading.Event()
    # Explicit handlers: a shell starting us in the background may have ignored SIGINT.
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with TestHost(name, release=release) as host:
        assert host.sink is not None
        print(f"host:        {host.fqdn} at {host.ip} (Debian {host.release})")
        print(f"clients:     runner_ip {host.runner_ip}, runner_ip2 {host.runner_ip2}")
        print(f"ssh:         {host.ssh_command()}")
        print(f"inside:      nsenter -t {host.init_pid} -a bash")
        print(f"smtp sink:   {host.sink.ip}:{host.sink.port} (messages are counted below)")
        print("commands:    " + json.dumps(host.commands, indent=2).replace("\n", "\n" + " " * 13))
        print("Ctrl-C stops the host.", flush=True)
        seen = 0
        while not done.wait(1):
            msgs = host.sink.messages()
            for m in msgs[seen:]:
                print(f"sink: from <{m.mail_from}> to {', '.join(m.rcpt_tos)}", flush=True)
            seen = len(msgs)
        print("stopping...", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testhost", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a host and keep it until Ctrl-C")
    up.add_argument("--name", default="dev", help="host name; the FQDN is NAME.test")
    up.add_argument("--release", choices=["12", "13"], help="Debian release (default: this one)")
    root = sub.add_parser("root", help="build or refresh the cached root of a Debian release")
    root.add_argument("--release", choices=sorted(rootfs.RELEASES), required=True)
    sub.add_parser("cleanup", help="remove hosts left behind by test runs that were killed")
    args = parser.parse_args(argv)
    if args.command == "cleanup":
        with machine_lock():
            removed = reap_stale_hosts()
        for what in removed:
            print("removed", what)
        return 0
    if args.command == "root":
        return _root(args.release)
    return _up(args.name, args.release)


if __name__ == "__main__":
    sys.exit(main())
