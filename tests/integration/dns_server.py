"""An authoritative DNS server on the test network: Debian's NSD, run in the foreground by the
test on an address of its own (a test host's runner-side address), serving zone files the test
writes, plus an empty root zone so that every other name is NXDOMAIN (as on the internet)
rather than REFUSED (which resolvers and mail verifiers treat as a temporary error)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import dns.exception
import dns.rdatatype
import dns.resolver

from tests.waiting import wait_until

SERIAL = 1


def soa(zone: str, serial: int = SERIAL) -> str:
    """The head every zone needs: origin, TTL, SOA and NS (the name server is ns.test)."""
    return (f"$ORIGIN {zone}.\n$TTL 300\n"
            f"@ IN SOA ns.test. hostmaster.test. {serial} 3600 600 86400 300\n"
            "@ IN NS ns.test.\n")


def resolver(ip: str) -> dns.resolver.Resolver:
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [ip]
    res.lifetime = 2.0
    res.cache = None
    return res


class NsdServer:
    """NSD answering on `ip`:53 for `zones` (zone name -> zone file text)."""

    def __init__(self, ip: str, directory: Path) -> None:
        self.ip = ip
        self.dir = directory
        self.zones: dict[str, str] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        d = self.dir
        head = f"""server:
  ip-address: {self.ip}
  port: 53
  username: ""
  chroot: ""
  zonesdir: "{d}"
  pidfile: "{d}/nsd.pid"
  database: ""
  zonelistfile: "{d}/zone.list"
  xfrdfile: "{d}/xfrd.state"
  xfrdir: "{d}"
  logfile: "{d}/nsd.log"
  server-count: 1
  verbosity: 2
remote-control:
  control-enable: no
"""
        return head + "".join(f'zone:\n  name: "{name}"\n  zonefile: "{name}.zone"\n'
                              for name in self.zones)

    def serve(self, zones: dict[str, str]) -> None:
        """(Re)start NSD with these zones (each a zone file's text, SOA included) and an
        empty root zone; returns once every zone answers its SOA."""
        self.stop()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.zones = {".": soa(".").replace("$ORIGIN ..", "$ORIGIN ."), **zones}
        for name, text in self.zones.items():
            (self.dir / f"{name}.zone").write_text(text)
        (self.dir / "nsd.conf").write_text(self._config())
        check = subprocess.run(["nsd-checkconf", str(self.dir / "nsd.conf")],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(["nsd", "-d", "-c", str(self.dir / "nsd.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        res = resolver(self.ip)

        def answering() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log()
            for name in zones:
                try:
                    res.resolve(name + ".", dns.rdatatype.SOA)
                except dns.exception.DNSException:
                    return False
            return True

        wait_until(answering, timeout=20, what=f"NSD answering on {self.ip}")

    def log(self) -> str:
        path = self.dir / "nsd.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def nsd_missing() -> str | None:
    return None if shutil.which("nsd") else "nsd (Debian package nsd)"
