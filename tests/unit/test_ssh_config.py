"""SSH as operators configure it, without a server: aliases and ProxyJump resolved from an
OpenSSH client config, and failures that name the target and say what to check."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mailstate.server.ssh import SSHTransport, _Hop, load_config
from mailstate.server.transport import TransportError


def test_an_alias_resolves_as_ssh_would(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host mx1\n  HostName 192.0.2.10\n  User mailstate\n  Port 2222\n"
                      "  IdentityFile ~/.ssh/mx1_ed25519\n  ProxyJump admin@bastion:2200\n"
                      "  ServerAliveInterval 5\n"
                      "Host *\n  User nobody\n")
    hop = _Hop(None, "mx1", None, load_config(str(config)))
    assert (hop.host, hop.user, hop.port, hop.keepalive) == ("192.0.2.10", "mailstate", 2222, 5)
    assert hop.identities == [str(Path("~/.ssh/mx1_ed25519").expanduser())]
    assert hop.jumps == ["admin@bastion:2200"]
    # what the target says wins over the config; unknown hosts get the defaults
    explicit = _Hop("root", "mx1", 22, load_config(str(config)))
    assert (explicit.user, explicit.port) == ("root", 22)
    other = _Hop(None, "other.example", None, load_config(str(config)))
    assert (other.host, other.user, other.port, other.jumps) == ("other.example", "nobody",
                                                                 22, [])


def test_a_missing_ssh_config_named_in_the_repository_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TransportError, match="cannot read the SSH config"):
        load_config(str(tmp_path / "nope"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the with-block ends


@pytest.mark.parametrize("target, expected", [
    ("ssh://root@127.0.0.1:{port}", "cannot connect to 127.0.0.1 port {port}: "),
    ("ssh://root@no-such-host.invalid", "cannot resolve the host name no-such-host.invalid"),
])
def test_ssh_failures_say_what_and_where(tmp_path: Path, target: str, expected: str) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    port = _closed_port()
    target, expected = target.format(port=port), expected.format(port=port)
    with pytest.raises(TransportError) as exc:
        SSHTransport(target, known_hosts=str(known), timeout=5)
    message = str(exc.value)
    assert message.startswith(f"{target}: ") and expected in message, message
    assert "[Errno" not in message


def test_a_missing_identity_file_is_named(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    with pytest.raises(TransportError, match=r"the identity file .*/nope does not exist"):
        SSHTransport("ssh://root@127.0.0.1:1", known_hosts=str(known),
                     identity=str(tmp_path / "nope"))
