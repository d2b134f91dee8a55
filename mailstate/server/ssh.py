"""``ssh://[USER@]HOST[:PORT]``: a real server over SSH (paramiko), host keys checked strictly.

The host key must already be in the known_hosts file (``--known-hosts``, the config's
``known_hosts``, the SSH config's ``UserKnownHostsFile``, or ``~/.ssh/known_hosts``): an
unknown or changed key stops the run. Nothing is ever added automatically. Each ``run`` is one
``exec`` on one connection.

HOST may be an alias of the operator's OpenSSH client config (``~/.ssh/config``, or the file
named by ``ssh_config:`` in ``mailstate.yaml``): ``HostName``, ``User``, ``Port``,
``IdentityFile``, ``ProxyJump`` and ``ServerAliveInterval`` are honoured, as ``ssh`` would.
Keepalives (every 15 s unless the config says otherwise) keep a long apply over a quiet link
from being dropped. Every failure is a ``TransportError`` whose message names the server and
says what to check, never a bare ``[Errno None]``.
"""

from __future__ import annotations

import re
import select
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko

from mailstate.server.transport import LineFeed, Result, TransportError, sh_command

_TARGET = re.compile(r"ssh://(?:(?P<user>[A-Za-z0-9._-]+)@)?"
                     r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>\d{1,5}))?/?")
_HOP = re.compile(r"(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)"
                  r"(?::(?P<port>\d{1,5}))?")
KEEPALIVE = 15  # seconds, unless the SSH config sets ServerAliveInterval


def parse_target(target: str) -> tuple[str, str, int]:
    """(user, host, port) with the defaults root and 22 (the SSH config is not consulted)."""
    m = _TARGET.fullmatch(target)
    if not m:
        raise TransportError(f"{target!r} is not an SSH target; write ssh://root@host[:port]")
    return m["user"] or "root", m["host"].strip("[]"), int(m["port"] or 22)


def load_config(path: str | None) -> paramiko.SSHConfig:
    """The named OpenSSH client config, else ~/.ssh/config if there is one, else nothing."""
    chosen = Path(path).expanduser() if path else Path.home() / ".ssh" / "config"
    if not path and not chosen.is_file():
        return paramiko.SSHConfig()
    try:
        return paramiko.SSHConfig.from_path(str(chosen))
    except (OSError, paramiko.ConfigParseError) as exc:
        raise TransportError(f"cannot read the SSH config {chosen}: {exc}") from None


class _Hop:
    """One host to connect to, as the SSH config resolves it."""

    def __init__(self, user: str | None, host: str, port: int | None,
                 config: paramiko.SSHConfig) -> None:
        self.alias = host
        found: dict[str, Any] = dict(config.lookup(host))
        self.host = str(found.get("hostname", host))
        self.user = user or str(found.get("user", "root"))
        self.port = port or int(found.get("port", 22))
        self.identities = [str(Path(p).expanduser()) for p in found.get("identityfile", [])]
        self.keepalive = int(found.get("serveraliveinterval", KEEPALIVE))
        self.known_hosts = found.get("userknownhostsfile")
        jump = str(found.get("proxyjump", "none"))
        self.jumps = [] if jump.lower() == "none" else [j.strip() for j in jump.split(",")]

    @property
    def where(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


def _hop(text: str, config: paramiko.SSHConfig) -> _Hop:
    m = _HOP.fullmatch(text.removeprefix("ssh://"))
    if not m:
        raise TransportError(f"ProxyJump {text!r} is not [user@]host[:port]")
    return _Hop(m["user"], m["host"].strip("[]"), int(m["port"]) if m["port"] else None, config)


class SSHTransport:
    def __init__(self, target: str, known_hosts: str | None = None,
                 identity: str | None = None, timeout: float = 20.0,
                 ssh_config: str | None = None) -> None:
        m = _TARGET.fullmatch(target)
        if not m:
            raise TransportError(f"{target!r} is not an SSH target; write "
                                 "ssh://root@host[:port]")
        self.name = target
        self.label = target
        self.round_trips = 0
        self.timeout = timeout
        config = load_config(ssh_config)
        self.hop = _Hop(m["user"], m["host"].strip("[]"), int(m["port"]) if m["port"] else None,
                        config)
        self.user, self.host, self.port = self.hop.user, self.hop.host, self.hop.port
        chosen = known_hosts or self.hop.known_hosts or Path.home() / ".ssh" / "known_hosts"
        self.known = Path(str(chosen).split()[0]).expanduser()
        self.config, self.identity = config, identity
        self.clients: list[paramiko.SSHClient] = []
        self._open()

    def _open(self) -> None:
        sock = None
        try:
            for text in self.hop.jumps:
                jump = _hop(text, self.config)
                client = self._connect(jump, sock, None, f"jump host {jump.alias} ")
                sock = self._channel(client, jump, self.hop)
            self.client = self._connect(self.hop, sock, self.identity, "")
        except BaseException:
            self.close()
            raise

    def reconnect(self) -> None:
        """A new connection after the old one was lost (host keys checked again)."""
        self.close()
        self.clients = []
        self._open()

    def _channel(self, client: paramiko.SSHClient, jump: _Hop, to: _Hop) -> paramiko.Channel:
        transport = client.get_transport()
        assert transport is not None
        try:
            return transport.open_channel("direct-tcpip", (to.host, to.port), ("", 0),
                                          timeout=self.timeout)
        except (paramiko.SSHException, OSError) as exc:
            raise TransportError(f"{self.label}: jump host {jump.alias} cannot reach "
                                 f"{to.host}:{to.port}: {exc}") from None

    def _connect(self, hop: _Hop, sock: Any, identity: str | None,
                 what: str) -> paramiko.SSHClient:
        """One authenticated connection with host keys checked; errors say what to check."""
        label, known = self.label, self.known
        client = paramiko.SSHClient()
        self.clients.append(client)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.load_host_keys(str(known))
        except (OSError, paramiko.SSHException) as exc:
            raise TransportError(f"{label}: cannot read known_hosts {known}: {exc}") from None
        keys = [str(Path(identity).expanduser())] if identity else hop.identities
        missing = [k for k in keys if not Path(k).is_file()]
        if identity and missing:
            raise TransportError(f"{label}: the identity file {missing[0]} does not exist "
                                 "(`identity:` in mailstate.yaml or --identity)")
        keys = [k for k in keys if k not in missing]  # ssh skips a missing IdentityFile too
        try:
            client.connect(hop.host, port=hop.port, username=hop.user, sock=sock,
                           key_filename=keys or None, allow_agent=identity is None,
                           look_for_keys=not keys, timeout=self.timeout,
                           banner_timeout=self.timeout, auth_timeout=self.timeout)
        except paramiko.BadHostKeyException:
            raise TransportError(f"{label}: {what}{hop.host}: the host key CHANGED "
                                 f"(known_hosts {known}); refusing to connect. Check the "
                                 "server, then fix known_hosts by hand") from None
        except paramiko.AuthenticationException as exc:
            used = ", ".join(keys) if keys else "the SSH agent and ~/.ssh/id_*"
            raise TransportError(f"{label}: {what}{hop.where} refused the login ({exc}); "
                                 f"keys tried: {used}. Check `identity:` and that the key "
                                 "is in the server's authorized_keys") from None
        except paramiko.ssh_exception.NoValidConnectionsError as exc:
            reasons = sorted({e.strerror or str(e) for e in exc.errors.values()})
            raise TransportError(f"{label}: cannot connect to {what}{hop.host} port "
                                 f"{hop.port}: {'; '.join(reasons) or 'refused'} (is sshd "
                                 "running there, and the port right?)") from None
        except socket.gaierror as exc:
            raise TransportError(f"{label}: cannot resolve the host name {what}{hop.host}: "
                                 f"{exc.strerror}; check the target or the SSH config's "
                                 "HostName") from None
        except TimeoutError:
            raise TransportError(f"{label}: no answer from {what}{hop.host} port {hop.port} "
                                 f"within {self.timeout:g} s (a firewall, or the wrong "
                                 "address?)") from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise TransportError(f"{label}: {what}{hop.host}: the host key is unknown "
                                     f"(not in {known}); add it after checking its "
                                     "fingerprint, e.g. with ssh-keyscan, then run "
                                     "again") from None
            raise TransportError(f"{label}: SSH to {what}{hop.where} failed: {exc}") from None
        except (OSError, EOFError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or "the connection was closed"
            raise TransportError(f"{label}: cannot connect to {what}{hop.host} port "
                                 f"{hop.port}: {reason}") from None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(hop.keepalive)
        return client

    def run(self, script: str, args: list[str], stdin: bytes = b"",
            on_line: Callable[[str], None] | None = None,
            idle_timeout: float | None = None) -> Result:
        """One exec. With idle_timeout, a script that sends heartbeats (NUL bytes on stderr)
        and is silent for that long counts as a lost connection (a dropped network)."""
        self.round_trips += 1
        lines = LineFeed(on_line)
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise TransportError(f"{self.label}: the SSH connection was lost")
        try:
            chan = transport.open_session()
            if idle_timeout is not None:
                chan.settimeout(idle_timeout)  # a sendall into a dropped network
            chan.exec_command(sh_command(script, args))
            chan.sendall(stdin)
            chan.shutdown_write()
            out, err = bytearray(), bytearray()
            heard = time.monotonic()
            while True:
                select.select([chan], [], [], 1.0)
                while chan.recv_ready():
                    out += chan.recv(1 << 16)
                    heard = time.monotonic()
                lines.feed(out)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(1 << 16)
                    heard = time.monotonic()
                if idle_timeout is not None and time.monotonic() - heard > idle_timeout:
                    chan.close()
                    raise TransportError(f"{self.label}: no answer for {idle_timeout:.0f} s; "
                                         "the connection is taken as lost")
                # Until EOF, not until the exit status: sshd may send the status while output
                # is still on its way (seen under load: a truncated answer).
                if (chan.eof_received or chan.closed) and not chan.recv_ready() \
                        and not chan.recv_stderr_ready():
                    break
                if not transport.is_active():
                    raise TransportError(f"{self.label}: the SSH connection was lost while "
                                         "a script ran; run plan again to see where it "
                                         "stopped")
            chan.status_event.wait(self.timeout)  # the status may follow the EOF
            code = chan.recv_exit_status() if chan.exit_status_ready() else -1
            if code == -1:  # the session was killed: no exit status
                raise TransportError(f"{self.label}: the SSH session ended before the "
                                     "script did")
            chan.close()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"{self.label}: SSH failed: {exc}") from None
        return Result(code, bytes(out), bytes(err).replace(b"\0", b""))

    def close(self) -> None:
        for client in reversed(self.clients):
            client.close()
