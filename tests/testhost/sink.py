"""A small SMTP server on the runner side that accepts every message and keeps it.

Test hosts relay all mail for outside domains to it (their relayhost), so tests can see forwards,
vacation replies (MAIL FROM:<>) and bounces. Standard library only: threads and sockets.
"""

from __future__ import annotations

import contextlib
import email
import email.message
import email.policy
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SinkMessage:
    """One message as received: envelope and raw bytes (dot-unstuffed, CRLF line ends)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    peer: str
    received_at: float = field(default_factory=time.time)

    @property
    def message(self) -> email.message.EmailMessage:
        """The parsed message (modern email API)."""
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        return msg


def _address(arg: str) -> str:
    """`FROM:<a@b> SIZE=1` -> `a@b` (empty for the null sender)."""
    _, _, rest = arg.partition(":")
    rest = rest.strip()
    if rest.startswith("<"):
        return rest[1 : rest.find(">")] if ">" in rest else rest[1:]
    return rest.split(" ", 1)[0]


class SmtpSink:
    """Accepts every message on (ip, port) and records it; see `messages()` and `wait_for()`."""

    def __init__(self, ip: str, port: int, hostname: str = "sink.test") -> None:
        self.ip = ip
        self.port = port
        self.hostname = hostname
        self._messages: list[SinkMessage] = []
        self._cond = threading.Condition()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.ip, self.port))
        sock.listen(16)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, name="smtp-sink", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._sock is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone does not.
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # --- API for tests --------------------------------------------------------------------
    def messages(self) -> list[SinkMessage]:
        """All messages received since the start or the last clear(), oldest first."""
        with self._cond:
            return list(self._messages)

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()

    def wait_for(
        self, predicate: Callable[[SinkMessage], bool] = lambda m: True, timeout: float = 30.0
    ) -> SinkMessage:
        """The first recorded message matching `predicate`, waiting up to `timeout` seconds.

        Raises TimeoutError listing what did arrive, which is what one wants to read when a
        test fails.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for msg in self._messages:
                    if predicate(msg):
                        return msg
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(m.mail_from, m.rcpt_tos) for m in self._messages]
                    raise TimeoutError(f"no matching message in {timeout} s; received: {seen}")
                self._cond.wait(left)

    # --- server ---------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._sock is not None
        sock = self._sock
        while True:
            try:
                conn, addr = sock.accept()
            except OSError:
                return
            threading.Thread(
                target=self._session, args=(conn, f"{addr[0]}:{addr[1]}"), daemon=True
            ).start()

    def _session(self, conn: socket.socket, peer: str) -> None:
        with conn, conn.makefile("rb") as rfile:
            conn.settimeout(60)

            def reply(line: str) -> None:
                conn.sendall(line.encode() + b"\r\n")

            reply(f"220 {self.hostname} ESMTP test sink")
            mail_from: str | None = None
            rcpts: list[str] = []
            try:
                while True:
                    raw = rfile.readline(4096)
                    if not raw:
                        return
                    line = raw.decode("latin-1").rstrip("\r\n")
                    verb, _, arg = line.partition(" ")
                    verb = verb.upper()
                    if verb == "EHLO":
                        reply(f"250-{self.hostname}")
                        reply("250-8BITMIME")
                        reply("250 SIZE 104857600")
                    elif verb == "HELO":
                        reply(f"250 {self.hostname}")
                    elif verb == "MAIL":
                        mail_from, rcpts = _address(arg), []
                        reply("250 2.1.0 Ok")
                    elif verb == "RCPT":
                        if mail_from is None:
                            reply("503 5.5.1 MAIL first")
                            continue
                        rcpts.append(_address(arg))
                        reply("250 2.1.5 Ok")
                    elif verb == "DATA":
                        if mail_from is None or not rcpts:
                            reply("503 5.5.1 MAIL and RCPT first")
                            continue
                        reply("354 End data with <CR><LF>.<CR><LF>")
                        data = self._read_data(rfile)
                        if data is None:
                            return
                        self._record(SinkMessage(mail_from, tuple(rcpts), data, peer))
                        mail_from, rcpts = None, []
                        reply("250 2.0.0 Ok: queued")
                    elif verb == "RSET":
                        mail_from, rcpts = None, []
                        reply("250 2.0.0 Ok")
                    elif verb == "NOOP":
                        reply("250 2.0.0 Ok")
                    elif verb == "QUIT":
                        reply("221 2.0.0 Bye")
                        return
                    else:
                        reply("502 5.5.2 Command not implemented")
            except OSError:
                return

    @staticmethod
    def _read_data(rfile) -> bytes | None:
        lines: list[bytes] = []
        while True:
            raw = rfile.readline()
            if not raw:
                return None
            if raw in (b".\r\n", b".\n"):
                return b"".join(lines)
            if raw.startswith(b"."):
                raw = raw[1:]
            if not raw.endswith(b"\r\n"):
                raw = raw.rstrip(b"\n") + b"\r\n"
            lines.append(raw)

    def _record(self, msg: SinkMessage) -> None:
        with self._cond:
            self._messages.append(msg)
            self._cond.notify_all()
