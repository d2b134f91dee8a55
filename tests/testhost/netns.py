"""Network namespaces and veth pairs of test hosts, and removal of hosts left behind.

Host n uses 10.77.n.0/24 on a veth pair mst<n>r (runner side) / eth0 (inside netns
mailstate-<n>). Allocation is serialised by a machine-wide lock so that several test processes
can run hosts at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .config import Addresses
from .files import run

NETNS_PREFIX = "mailstate-"
BASE_PREFIX = "mailstate-testhost-"
_LOCK_FILE = "/run/lock/mailstate-testhost.lock"


@contextlib.contextmanager
def machine_lock() -> Iterator[None]:
    os.makedirs(os.path.dirname(_LOCK_FILE), exist_ok=True)
    with open(_LOCK_FILE, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def veth_names(n: int) -> tuple[str, str]:
    """Runner side and host side (renamed eth0 inside) of host n's veth pair."""
    return f"mst{n}r", f"mst{n}h"


def _index(netns: str) -> int:
    return int(netns.removeprefix(NETNS_PREFIX))


def _our_netns() -> list[str]:
    return re.findall(rf"^({NETNS_PREFIX}\d+)\b", run("ip", "netns", "list"), re.M)


def create(base: Path) -> tuple[Addresses, str, str]:
    """Make a netns and veth pair for a new host; returns (addresses, netns, runner veth).

    The netns name is recorded in base/netns first, so that a crash leaves it findable.
    """
    with machine_lock():
        reap_stale_hosts()
        used = {int(m) for m in re.findall(r"inet 10\.77\.(\d+)\.", run("ip", "-o", "-4", "addr"))}
        used |= {_index(ns) for ns in _our_netns()}
        n = next((i for i in range(1, 255) if i not in used), None)
        if n is None:
            raise RuntimeError("no free 10.77.N.0/24 for a test host")
        netns, (veth, peer) = f"{NETNS_PREFIX}{n}", veth_names(n)
        (base / "netns").write_text(netns)
        run("ip", "netns", "add", netns)
        run("ip", "link", "add", veth, "type", "veth", "peer", peer, "netns", netns)
    a = Addresses(n)
    run("ip", "addr", "add", f"{a.runner_ip}/24", "dev", veth)  # first: the default source
    run("ip", "addr", "add", f"{a.runner_ip2}/24", "dev", veth)
    run("ip", "link", "set", veth, "up")
    run("ip", "-n", netns, "link", "set", peer, "name", "eth0")
    run("ip", "-n", netns, "addr", "add", f"{a.host_ip}/24", "dev", "eth0")
    run("ip", "-n", netns, "link", "set", "eth0", "up")
    run("ip", "-n", netns, "link", "set", "lo", "up")
    return a, netns, veth


def remove(netns: str | None, veth: str | None) -> None:
    """Kill what still runs in the netns, delete the veth, then the netns (in that order:
    netns deletion is asynchronous)."""
    if netns is not None:
        pids = subprocess.run(
            ["ip", "netns", "pids", netns], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    if veth is not None:
        subprocess.run(["ip", "link", "del", veth], capture_output=True, check=False)
    if netns is not None:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)


def reap_stale_hosts() -> list[str]:
    """Remove hosts whose owning process died without stop() (e.g. a SIGKILLed test run).

    Their daemons would otherwise keep running in their own session. A base directory whose
    owner.lock can be locked has no owner left; a netns of ours that no base claims is stale
    too. Returns what was removed. Safe while other processes run hosts.
    """
    removed: list[str] = []
    claimed: set[str] = set()
    for base in Path(tempfile.gettempdir()).glob(BASE_PREFIX + "*"):
        netns_file = base / "netns"
        netns = netns_file.read_text().strip() if netns_file.exists() else None
        try:
            with open(base / "owner.lock") as lock:  # never create it: a start may be under way
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            claimed.add(netns or "")
            continue
        except OSError:  # no owner.lock yet: only stale once old
            if time.time() - base.stat().st_mtime < 60:
                continue
        if netns:
            remove(netns, veth_names(_index(netns))[0])
            claimed.add(netns)
        shutil.rmtree(base, ignore_errors=True)
        removed.append(str(base))
    for netns in _our_netns():
        if netns not in claimed:
            remove(netns, veth_names(_index(netns))[0])
            removed.append(netns)
    return removed
