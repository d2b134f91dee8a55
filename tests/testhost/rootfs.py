"""Debian root file systems for test hosts of another release than the machine's own.

A Debian 13 host runs its daemons from a Debian 13 root built once with mmdebstrap (debootstrap
cannot resolve the virtual package perl-openssl-abi-3 that postgrey pulls in) and kept in a
cache directory between runs: MAILSTATE_TESTHOST_CACHE, default /var/cache/mailstate-testhost.
Each host mounts an overlay over the cached root, so hosts never change it.

A cached root is reused while its stamp matches what would be built now (suite, packages,
mirror) and is younger than MAX_AGE; a stale, broken or half-built one is rebuilt. The packages
come from the mirror in the machine's own apt sources: the project names no mirror.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "MAILSTATE_TESTHOST_CACHE"
DEFAULT_CACHE = "/var/cache/mailstate-testhost"
# Security and point updates: a root older than this is built again.
MAX_AGE = 14 * 24 * 3600
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
PACKAGES = (
    "dovecot-core",
    "dovecot-imapd",
    "dovecot-lmtpd",
    "dovecot-pop3d",
    "dovecot-sieve",
    "postfix",
    "postfix-lmdb",
    "postgrey",
    "openssh-server",
    "ssl-cert",
    "ca-certificates",
    "procps",
    "iproute2",
)
# Files whose absence means the root is broken (a build that died, a cleaned cache).
_MARKERS = (
    "usr/sbin/dovecot",
    "usr/lib/dovecot/lmtp",
    "usr/lib/dovecot/pop3",
    "usr/sbin/postfix",
    "usr/sbin/postgrey",
    "usr/sbin/sshd",
    "bin/bash",
)


@dataclass(frozen=True)
class Release:
    """A Debian release a test host can run: its number and its suite (code name)."""

    number: str
    suite: str


RELEASES = {"13": Release("13", "trixie")}


class RootError(RuntimeError):
    """A root cannot be built here (no mirror in the apt sources, mmdebstrap failed)."""


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def root_path(release: str) -> Path:
    return cache_dir() / f"debian{release}" / "root"


def mirror() -> str:
    """The Debian mirror URI of the machine's own apt sources (not the security archive)."""
    candidates: list[str] = []
    sources_d = Path("/etc/apt/sources.list.d")
    for path in sorted(sources_d.glob("*.sources")) if sources_d.is_dir() else []:
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(
                (m.group(1).lower(), m.group(2).strip())
                for m in re.finditer(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.M)
            )
            if fields.get("enabled", "yes").lower() == "no":
                continue
            if "deb" in fields.get("types", "").split():
                candidates += fields.get("uris", "").split()
    lists = [Path("/etc/apt/sources.list")]
    lists += sorted(sources_d.glob("*.list")) if sources_d.is_dir() else []
    for path in lists:
        if path.is_file():
            for m in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", path.read_text(), re.M):
                candidates.append(m.group(1))
    for uri in candidates:
        if "security" not in uri and re.search(r"/debian/?$", uri):
            return uri.rstrip("/")
    raise RootError("no Debian mirror (a URI ending in /debian) in the machine's apt sources")


def wanted_stamp(release: Release) -> dict[str, object]:
    return {"suite": release.suite, "packages": sorted(PACKAGES), "mirror": mirror()}


def _usable(root: Path, stamp_file: Path, wanted: dict[str, object]) -> bool:
    try:
        stamp = json.loads(stamp_file.read_text())
    except (OSError, ValueError):
        return False
    if {k: stamp.get(k) for k in wanted} != wanted:
        return False
    if time.time() - float(stamp.get("built", 0)) > MAX_AGE:
        return False
    return all((root / m).exists() for m in _MARKERS)


@contextlib.contextmanager
def _lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "build.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def ensure_root(release: str, log: bool = False) -> Path:
    """The cached root of a release, built first if missing, stale or broken.

    Several test processes may call this at once: one builds, the others wait for it.
    """
    rel = RELEASES[release]
    root = root_path(release)
    top = root.parent
    stamp_file = top / "stamp.json"
    wanted = wanted_stamp(rel)
    with _lock(top):
        if _usable(root, stamp_file, wanted):
            return root
        if shutil.which("mmdebstrap") is None:
            raise RootError("mmdebstrap is not installed (.ci/install-debian-packages.sh)")
        stamp_file.unlink(missing_ok=True)
        new = top / "root.new"
        shutil.rmtree(new, ignore_errors=True)
        started = time.monotonic()
        cmd = [
            "mmdebstrap",
            "--variant=apt",
            "--mode=root",
            f"--keyring={KEYRING}",
            "--include=" + ",".join(PACKAGES),
            rel.suite,
            str(new),
            f"deb {wanted['mirror']} {rel.suite} main",
        ]
        res = subprocess.run(cmd, capture_output=not log, text=True, check=False)
        if res.returncode != 0:
            shutil.rmtree(new, ignore_errors=True)
            raise RootError(f"mmdebstrap failed ({res.returncode}):\n{(res.stderr or '')[-3000:]}")
        shutil.rmtree(root, ignore_errors=True)
        new.rename(root)
        stamp = {**wanted, "built": time.time(), "seconds": round(time.monotonic() - started)}
        stamp_file.write_text(json.dumps(stamp, indent=2) + "\n")
        return root
