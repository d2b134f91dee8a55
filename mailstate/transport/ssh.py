"""``ssh://USER@HOST[:PORT]``: a real server over SSH (paramiko), host keys checked strictly.

The host key must already be in the known_hosts file (the config's ``known_hosts``,
``--known-hosts``, or ``~/.ssh/known_hosts``): an unknown or changed key stops the run. Nothing
is ever added automatically. Each ``run`` is one ``exec`` on one connection.
"""

from __future__ import annotations

import re
import select
from pathlib import Path

import paramiko

from .base import Result, TransportError, sh_command

_TARGET = re.compile(r"ssh://(?:(?P<user>[A-Za-z0-9._-]+)@)?"
                     r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>\d{1,5}))?/?")


def parse_target(target: str) -> tuple[str, str, int]:
    m = _TARGET.fullmatch(target)
    if not m:
        raise TransportError(f"{target!r} is not an SSH target; write ssh://root@host[:port]")
    return m["user"] or "root", m["host"].strip("[]"), int(m["port"] or 22)


class SSHTransport:
    def __init__(self, target: str, known_hosts: str | None = None,
                 identity: str | None = None, timeout: float = 20.0) -> None:
        self.user, self.host, self.port = parse_target(target)
        self.name = target
        self.round_trips = 0
        known = Path(known_hosts or Path.home() / ".ssh" / "known_hosts").expanduser()
        self.client = paramiko.SSHClient()
        self.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            self.client.load_host_keys(str(known))
        except (OSError, paramiko.SSHException) as exc:
            raise TransportError(f"{target}: cannot read known_hosts {known}: {exc}") from None
        try:
            self.client.connect(self.host, port=self.port, username=self.user,
                                key_filename=str(Path(identity).expanduser()) if identity else None,
                                allow_agent=identity is None, look_for_keys=identity is None,
                                timeout=timeout, banner_timeout=timeout, auth_timeout=timeout)
        except paramiko.BadHostKeyException:
            raise TransportError(f"{target}: the host key CHANGED (known_hosts {known}); "
                                 "refusing to connect. Check the server, then fix known_hosts "
                                 "by hand") from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise TransportError(f"{target}: the host key is unknown (not in {known}); "
                                     "add it after checking its fingerprint, e.g. with "
                                     "ssh-keyscan, then run again") from None
            raise TransportError(f"{target}: SSH failed: {exc}") from None
        except (TimeoutError, OSError) as exc:
            raise TransportError(f"{target}: cannot connect: {exc}") from None

    def run(self, script: str, args: list[str], stdin: bytes = b"") -> Result:
        self.round_trips += 1
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise TransportError(f"{self.name}: the SSH connection was lost")
        try:
            chan = transport.open_session()
            chan.exec_command(sh_command(script, args))
            chan.sendall(stdin)
            chan.shutdown_write()
            out, err = bytearray(), bytearray()
            while True:
                select.select([chan], [], [], 1.0)
                while chan.recv_ready():
                    out += chan.recv(1 << 16)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(1 << 16)
                if chan.exit_status_ready() and not chan.recv_ready() \
                        and not chan.recv_stderr_ready():
                    break
            code = chan.recv_exit_status()
            chan.close()
        except (paramiko.SSHException, OSError) as exc:
            raise TransportError(f"{self.name}: {exc}") from None
        return Result(code, bytes(out), bytes(err))

    def close(self) -> None:
        self.client.close()
