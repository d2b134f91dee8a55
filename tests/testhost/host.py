"""A real mail server for integration tests, started and stopped by the test suite itself.

One TestHost = network, mount, UTS and PID namespaces on this machine. Inside, a small init
(init.sh) is PID 1 and runs Postfix, Dovecot, sshd and postgrey in the foreground. The host has
private copies of the mail configuration and state directories, bind-mounted over the standard
paths, so that over SSH it looks like a freshly installed Debian mail server. The runner reaches it
through a veth pair on its own 10.77.N.0/24; no traffic leaves the machine.

Needs root and the Debian packages (see .ci/install-debian-packages.sh).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from tests.waiting import wait_until

from . import config, files, netns, rootfs
from .config import Addresses
from .sink import SmtpSink

_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What processes inside the host see: nothing of the runner's environment leaks in.
_ENV = {"PATH": _PATH, "LANG": "C.UTF-8", "HOME": "/root"}

SSH_PORT = 22
SMTP_PORT = 25
IMAP_PORT = 143
POSTGREY_PORT = 10023

REQUIRED_PROGRAMS = [
    "postfix",
    "postconf",
    "postalias",
    "dovecot",
    "doveadm",
    "sievec",
    "postgrey",
    "/usr/sbin/sshd",
    "ssh-keygen",
    "openssl",
    "swaks",
    "ip",
    "ss",
    "unshare",
    "nsenter",
]
REQUIRED_FILES = (
    "/usr/lib/dovecot/lmtp",  # dovecot-lmtpd
    "/usr/lib/dovecot/imap",  # dovecot-imapd
    "/usr/lib/dovecot/pop3",  # dovecot-pop3d
    "/usr/lib/postfix/postfix-lmdb.so",  # postfix-lmdb
    "/usr/lib/postfix/configure-instance.sh",
)


POP3_PORT = 110


def machine_release() -> str:
    """The Debian release number of this machine ('12' on bookworm)."""
    return Path("/etc/debian_version").read_text().strip().split(".")[0]


RELEASES = ("12", "13")


def missing_requirements(release: str | None = None) -> list[str]:
    """Why test hosts cannot run here (empty when they can): not root, or packages missing.

    A host of another release than the machine's runs from a cached root (rootfs.py) that is
    built on first use; it needs mmdebstrap and the machine's apt sources for that.
    """
    missing = [] if os.geteuid() == 0 else ["root privileges"]
    missing += [p for p in REQUIRED_PROGRAMS if shutil.which(p, path=_PATH) is None]
    missing += [f for f in REQUIRED_FILES if not os.path.exists(f)]
    if release is not None and release != machine_release():
        if release not in rootfs.RELEASES:
            missing.append(f"a way to build a Debian {release} root")
        elif shutil.which("mmdebstrap") is None and not rootfs.root_path(release).exists():
            missing.append("mmdebstrap")
    return missing


class HostCommandError(subprocess.CalledProcessError):
    """A command inside the host failed; the message carries its output (what one needs)."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout!r}\nstderr: {self.stderr!r}"


def _alive(pid: int) -> bool:
    """True while pid runs; a zombie does not count (gotcha: kill -0 succeeds on zombies)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _probe(ip: str, port: int, expect: bytes, timeout: float = 1.0) -> bool:
    """Does a TCP server answer with the expected greeting?"""
    try:
        with socket.create_connection((ip, port), timeout=timeout) as s:
            return s.recv(64).startswith(expect)
    except OSError:
        return False


class TestHost:
    """One test host. Use as a context manager, or call start() and stop().

    Attributes once started: ip (the host), runner_ip (normal client, whitelisted by tests),
    runner_ip2 (a second client address, not whitelisted), fqdn, key_path, known_hosts_path,
    commands (shell commands that reload the daemons on this host), sink (the SMTP sink that
    the host relays outside mail to), ports, init_pid, netns, base.

    release: the Debian release the host runs ("12", "13"); None is the machine's own. The
    machine's own release runs the machine's packages; another runs from a cached root of that
    release (built with mmdebstrap on first use, see rootfs.py), on an overlay per host.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self, name: str = "mail", domain: str = "test", release: str | None = None
    ) -> None:
        self.name = name
        self.release = release or machine_release()
        self.fqdn = f"{name}.{domain}"
        self.source = Path("/")
        self.base: Path | None = None
        self.netns: str | None = None
        self.init_pid: int | None = None
        self.sink: SmtpSink | None = None
        self._addrs: Addresses | None = None
        self._veth: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner_lock: IO[str] | None = None
        self.ports = {
            "ssh": SSH_PORT,
            "smtp": SMTP_PORT,
            "imap": IMAP_PORT,
            "pop3": POP3_PORT,
            "postgrey": POSTGREY_PORT,
            "sink": config.SMTP_SINK_PORT,
        }
        self.commands = {
            "postfix_reload": "postfix reload",
            "dovecot_reload": "doveadm reload",
            "postgrey_restart": "/usr/local/sbin/testhost-restart-postgrey",
            "postgrey_reload": 'kill -HUP "$(cat /run/postgrey.pid)"',
        }

    # --- addresses and files ------------------------------------------------------------------
    @property
    def ip(self) -> str:
        return self._need(self._addrs).host_ip

    @property
    def runner_ip(self) -> str:
        return self._need(self._addrs).runner_ip

    @property
    def runner_ip2(self) -> str:
        return self._need(self._addrs).runner_ip2

    @property
    def key_path(self) -> Path:
        """Private key (ed25519, OpenSSH format) that logs in as root."""
        return self._need(self.base) / "id_ed25519"

    @property
    def known_hosts_path(self) -> Path:
        """known_hosts with the host's ed25519 key for its ip (port 22)."""
        return self._need(self.base) / "known_hosts"

    def host_path(self, path: str) -> Path:
        """A path inside the running host, as the runner can open it (/proc/PID/root/...)."""
        return Path(f"/proc/{self._need(self.init_pid)}/root") / path.lstrip("/")

    def ssh_command(self) -> str:
        return (
            f"ssh -i {self.key_path} -o UserKnownHostsFile={self.known_hosts_path} "
            f"-o StrictHostKeyChecking=yes root@{self.ip}"
        )

    @staticmethod
    def _need(value: Any) -> Any:
        if value is None:
            raise RuntimeError("test host not started")
        return value

    # --- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> TestHost:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> TestHost:
        """Bring the host up and return once sshd, smtpd, imap and postgrey answer."""
        if self._proc is not None:
            raise RuntimeError("test host already started")
        try:
            if self.release != machine_release():
                self.source = rootfs.ensure_root(self.release)
            self.base = Path(tempfile.mkdtemp(prefix=f"{netns.BASE_PREFIX}{self.name}-"))
            # Held while this process owns the host: reap_stale_hosts() spares locked bases.
            self._owner_lock = open(self.base / "owner.lock", "w")  # noqa: SIM115
            fcntl.flock(self._owner_lock, fcntl.LOCK_EX)
            self._addrs, self.netns, self._veth = netns.create(self.base)
            self.sink = SmtpSink(self.runner_ip, config.SMTP_SINK_PORT)
            self.sink.start()
            files.prepare(self.base, self.fqdn, self._addrs, self.source)
            self._launch()
            self.wait_ready(timeout)
            if self._postgrey_state() != "running":
                raise RuntimeError("postgrey did not start\n" + self.read_log("postgrey"))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything and remove all traces; safe after a partial start or a failure."""
        init_pid = self.init_pid if self._proc is not None else None
        if self._proc is not None:
            if self.init_pid is not None and _alive(self.init_pid):
                os.kill(self.init_pid, signal.SIGTERM)  # init stops the daemons cleanly
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)  # unshare + init: ends the PID ns
            self._proc.wait(timeout=10)
            self._proc = None
        if self.sink is not None:
            self.sink.stop()
            self.sink = None
        netns.remove(self.netns, self._veth)
        self.netns = self._veth = None
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None
        if self._owner_lock is not None:
            self._owner_lock.close()
            self._owner_lock = None
        self.init_pid = None
        if init_pid is not None:
            # After a SIGKILL (init did not stop in time) unshare is gone at once, while the
            # kernel still ends the host's other processes: its init goes last.
            wait_until(lambda: _alive(init_pid), 10,
                       f"the test host's init (pid {init_pid}) and its processes to end",
                       until=lambda alive: not alive)

    def _launch(self) -> None:
        base = self._need(self.base)
        env = {**_ENV, "TESTHOST_BASE": str(base), "TESTHOST_FQDN": self.fqdn}
        if self.source != Path("/"):
            env["TESTHOST_LOWER"] = str(self.source)
        namespaces = ["--mount", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc"]
        cmd = ["ip", "netns", "exec", self._need(self.netns), "unshare", *namespaces]
        cmd.append(str(base / "init.sh"))
        with open(base / "launcher.log", "wb") as out:
            # A new session: stop() can kill the whole group, even after a partial start.
            self._proc = subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # `ip netns exec` execs unshare in place; unshare forks the init (PID 1 inside).
        children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                pids = children.read_text().split()
                if pids:
                    self.init_pid = int(pids[0])
                    return
            if self._proc.poll() is not None:
                break
            time.sleep(0.01)
        raise RuntimeError("test host init did not start:\n" + self._diagnostics())

    # --- readiness and inspection -----------------------------------------------------------
    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until sshd, smtpd (:25), imap (:143), pop3 (:110) answer, and postgrey if it
        is starting."""
        base = self._need(self.base)
        deadline = time.monotonic() + timeout
        pending = {SSH_PORT: b"SSH-", SMTP_PORT: b"220 ", IMAP_PORT: b"* OK"}
        pending[POP3_PORT] = b"+OK"
        while True:
            status = (base / "status").read_text().strip() if (base / "status").exists() else ""
            if status.startswith("failed") or not _alive(self._need(self.init_pid)):
                raise RuntimeError(f"test host failed ({status}):\n{self._diagnostics()}")
            if status == "running":
                pending = {p: e for p, e in pending.items() if not _probe(self.ip, p, e)}
                if not pending and self._postgrey_state() != "starting":
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"test host not ready, ports {sorted(pending)}:\n" + self._diagnostics()
                )
            time.sleep(0.05)

    def _postgrey_state(self) -> str:
        """starting, running, failed or exited, as the init last recorded it."""
        with contextlib.suppress(OSError):
            return self.host_path("/run/testhost/postgrey.state").read_text().strip()
        return "starting"

    def read_log(self, name: str) -> str:
        """A log of the host: postfix, dovecot, sshd, postgrey or testhost-init ('.log' optional).

        Read from the runner side, so it also works while the host's daemons are broken.
        """
        if "." not in name:
            name += ".log"
        path = self._need(self.base) / "root/var/log" / name
        return path.read_text(errors="replace") if path.exists() else ""

    def _diagnostics(self) -> str:
        parts = []
        if self.base is not None:
            launcher = self.base / "launcher.log"
            if launcher.exists():
                parts.append("launcher: " + launcher.read_text(errors="replace"))
            for name in ("testhost-init", "postfix", "dovecot", "sshd", "postgrey"):
                parts.append(f"--- {name}.log ---\n" + self.read_log(name)[-3000:])
        return "\n".join(parts)

    def exec(
        self, cmd: list[str] | str, input: str | bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[Any]:
        """Run a command inside the host (all its namespaces) as root, without SSH.

        A string runs through `bash -c`. Output is text unless `input` is bytes.
        """
        argv = ["bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        # -r -w: the init's root and directory (a host of another release is chrooted).
        full = ["nsenter", "-t", str(self._need(self.init_pid)), "-a", "-r", "-w", "--", *argv]
        text = not isinstance(input, bytes)
        res = subprocess.run(
            full, input=input, capture_output=True, text=text, env=_ENV, check=False
        )
        if check and res.returncode != 0:
            raise HostCommandError(res.returncode, argv, res.stdout, res.stderr)
        return res

    def ssh_client(self) -> Any:
        """A paramiko SSHClient logged in as root, with strict host key checking."""
        import paramiko

        client = paramiko.SSHClient()
        client.load_host_keys(str(self.known_hosts_path))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            self.ip,
            port=SSH_PORT,
            username="root",
            key_filename=str(self.key_path),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
        return client

    def memory_kib(self) -> int:
        """Proportional memory (PSS, KiB) of every process of the host: for measurements."""
        out = subprocess.run(
            ["ip", "netns", "pids", self._need(self.netns)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        total = 0
        for pid in out.split():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        return total
