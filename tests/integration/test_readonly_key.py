"""The read-only SSH key on a real server: sshd runs only mailstate's read program for it.

The key is put in root's authorized_keys with the line `mailstate server-key --read-only`
prints. With it, a plan works (and sees a change); a shell command and an apply are refused
and change nothing; no hash reaches any output.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.mail import Site, password_hash
from tests.testhost import TestHost

pytestmark = pytest.mark.integration
HOST_NAME = "readonly"
PW = "Readonly-Password-1"
STATE_DIR = "/var/lib/mailstate"


def domain(quota: str) -> dict[str, object]:
    return {"domain": "readonly.be", "mailboxes": {
        "readonly": {"name": "Admin", "password": password_hash(PW), "quota": quota}}}


def test_a_read_only_key_can_plan_and_nothing_else(site: Site, host: TestHost,
                                                   tmp_path: Path) -> None:
    site.apply(domain("1G"))  # installs the read program
    key = tmp_path / "ci_read_only"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ci-read-only", "-f",
                    str(key)], check=True)
    line = site.cli("server-key", "--read-only", "--public-key", f"{key}.pub")
    assert line.code == 0, line
    assert line.stdout.startswith(f'restrict,command="/bin/sh {STATE_DIR}/read-only" ssh-ed25519 ')
    host.exec("cat >> /etc/ssh/authorized_keys/root", input=line.stdout)

    same = site.cli("plan", "--identity", str(key), "--detailed-exitcode")
    assert same.code == 0, same
    site.write_domain(domain("2G"))
    changed = site.cli("plan", "--identity", str(key), "--detailed-exitcode",
                       "--format", "json")
    assert changed.code == 2, changed
    assert '"old": "1G"' in changed.stdout and '"new": "2G"' in changed.stdout

    ssh = ["ssh", "-i", str(key), "-o", f"UserKnownHostsFile={host.known_hosts_path}",
           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o",
           "IdentitiesOnly=yes", f"root@{host.ip}"]
    shell = subprocess.run([*ssh, "touch /tmp/owned; id"], capture_output=True, text=True,
                           timeout=60)
    assert shell.returncode == 1, shell
    assert "refused: this SSH key may only read" in shell.stderr and "uid=" not in shell.stdout
    assert host.exec("test -e /tmp/owned", check=False).returncode == 1
    tty = subprocess.run([*ssh, "-tt"], capture_output=True, text=True, timeout=60,
                         input="id\nexit\n")
    assert tty.returncode != 0 and "uid=" not in tty.stdout

    passwd = host.host_path("/etc/dovecot/mailstate/passwd").read_bytes()
    refused = site.cli("apply", "--identity", str(key), "--auto-approve")
    assert refused.code == 1, refused
    assert "this SSH key may only read" in refused.stderr
    assert host.host_path("/etc/dovecot/mailstate/passwd").read_bytes() == passwd
    for text in (same.stdout, same.stderr, changed.stdout, changed.stderr, refused.stdout,
                 refused.stderr, shell.stdout, shell.stderr):
        assert "$6$" not in text and "SHA512-CRYPT" not in text

    # the full key still applies, and the read program stays in place
    site.apply()
    assert host.exec(f"test -f {STATE_DIR}/read-only", check=False).returncode == 0
