"""The test host itself works, proven with real protocols (SSH, SMTP, IMAP, postgrey's policy
protocol). If these fail, no other integration test can be trusted."""

from __future__ import annotations

import imaplib
import json
import os
import smtplib
import subprocess
import time
import uuid
from pathlib import Path

import paramiko
import pytest

from tests.testhost import HostCommandError, TestHost, config, rootfs
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

GOOD_OPTS = "--inet=127.0.0.1:10023 --delay=60 --max-age=35 --auto-whitelist-clients=0"


def ssh_run(host: TestHost, command: str) -> tuple[int, str, str]:
    client = host.ssh_client()
    try:
        _, stdout, stderr = client.exec_command(command, timeout=60)
        status = stdout.channel.recv_exit_status()
        return status, stdout.read().decode(), stderr.read().decode()
    finally:
        client.close()


def policy_query(host: TestHost, client_ip: str, sender: str, recipient: str) -> str:
    """Ask postgrey (inside the host) as Postfix would; returns its action line."""
    script = (
        "exec 3<>/dev/tcp/127.0.0.1/10023; "
        "printf 'request=smtpd_access_policy\\nprotocol_state=RCPT\\n"
        f"client_address={client_ip}\\nclient_name=unknown\\nsender={sender}\\n"
        f'recipient={recipient}\\n\\n\' >&3; read -r line <&3; echo "$line"'
    )
    return host.exec(script).stdout.strip()


def write_postgrey_opts(host: TestHost, opts: str) -> None:
    host.exec(["tee", "/etc/default/postgrey"], input=f'POSTGREY_OPTS="{opts}"\n')


# --- SSH ------------------------------------------------------------------------------------
def test_ssh_login_with_known_hosts(testhost: TestHost) -> None:
    status, out, _ = ssh_run(testhost, "id -u; hostname; postconf -h myhostname; echo $PATH")
    assert status == 0
    assert out.split() == [
        "0",
        "mail.test",
        "mail.test",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",  # sshd's, not ours
    ]


def test_ssh_refuses_unknown_host_key(testhost: TestHost, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    client = paramiko.SSHClient()
    client.load_host_keys(str(empty))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        client.connect(
            testhost.ip,
            username="root",
            key_filename=str(testhost.key_path),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
    client.close()


def test_ssh_refuses_other_client_keys(testhost: TestHost) -> None:
    client = paramiko.SSHClient()
    client.load_host_keys(str(testhost.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(
            testhost.ip,
            username="root",
            pkey=paramiko.RSAKey.generate(2048),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
    client.close()


# --- SMTP and IMAP from the runner ----------------------------------------------------------
@pytest.mark.parametrize("source", ["runner_ip", "runner_ip2"])
def test_smtp_banner(testhost: TestHost, source: str) -> None:
    source_ip = getattr(testhost, source)
    logged_before = len(testhost.read_log("postfix"))
    with smtplib.SMTP(testhost.ip, 25, source_address=(source_ip, 0), timeout=10) as smtp:
        code, _ = smtp.ehlo("client.test")
        assert code == 250
        banner = smtp.ehlo_resp or b""
        assert banner.startswith(b"mail.test")
    # smtpd hands its log lines to postlogd, which writes them a moment later.
    wait_until(lambda: testhost.read_log("postfix")[logged_before:], 10,
               f"this connection from [{source_ip}] in postfix.log",
               until=lambda new: f"[{source_ip}]" in new)


def test_imap_banner(testhost: TestHost) -> None:
    imap = imaplib.IMAP4(testhost.ip, 143, timeout=10)
    try:
        assert imap.welcome.startswith(b"* OK")
    finally:
        imap.logout()


# --- outgoing mail is caught by the sink ----------------------------------------------------
def test_sendmail_to_outside_reaches_sink(testhost: TestHost) -> None:
    assert testhost.sink is not None
    token = uuid.uuid4().hex
    message = f"From: root@mail.test\nTo: someone@outside.example\nSubject: {token}\n\nhello\n"
    testhost.exec(["sendmail", "-f", "root@mail.test", "someone@outside.example"], input=message)
    got = testhost.sink.wait_for(lambda m: m.message["Subject"] == token, timeout=30)
    assert got.mail_from == "root@mail.test"
    assert got.rcpt_tos == ("someone@outside.example",)
    assert got.peer.startswith(testhost.ip + ":")


# --- postgrey -------------------------------------------------------------------------------
def test_postgrey_restart_applies_new_options(testhost: TestHost) -> None:
    write_postgrey_opts(testhost, GOOD_OPTS)
    before = testhost.exec("cat /run/postgrey.pid").stdout
    status, out, err = ssh_run(testhost, testhost.commands["postgrey_restart"])
    assert status == 0, out + err
    after = testhost.exec("cat /run/postgrey.pid").stdout
    assert after != before
    listening = testhost.exec(["ss", "-Hltn", "sport = :10023"]).stdout
    assert "127.0.0.1:10023" in listening
    args = testhost.exec(["cat", "/proc/" + after.strip() + "/cmdline"]).stdout
    assert "--delay=60" in args and "--auto-whitelist-clients=0" in args
    # It answers the policy protocol: a new triplet is greylisted.
    sender = f"{uuid.uuid4().hex}@sender.example"
    assert "DEFER_IF_PERMIT" in policy_query(testhost, "10.9.8.7", sender, "x@mail.test")


def test_postgrey_restart_reports_bad_options(testhost: TestHost) -> None:
    write_postgrey_opts(testhost, "--inet=127.0.0.1:10023 --no-such-option")
    status, _, err = ssh_run(testhost, testhost.commands["postgrey_restart"])
    assert status == 1
    assert "postgrey failed" in err
    write_postgrey_opts(testhost, GOOD_OPTS)
    status, out, err = ssh_run(testhost, testhost.commands["postgrey_restart"])
    assert status == 0, out + err


def test_postgrey_reload_rereads_client_whitelist(testhost: TestHost) -> None:
    client = "10.9.9.9"
    sender = f"{uuid.uuid4().hex}@sender.example"
    assert "DEFER_IF_PERMIT" in policy_query(testhost, client, sender, "x@mail.test")
    testhost.exec(["tee", "/etc/postgrey/whitelist_clients.local"], input=f"{client}\n")
    testhost.exec(testhost.commands["postgrey_reload"])
    # postgrey re-reads its whitelists a moment after the HUP, not before kill returns.
    wait_until(lambda: policy_query(testhost, client, sender, "x@mail.test"), 10,
               f"postgrey to let {client} pass after the HUP (whitelist re-read)",
               until=lambda action: action == "action=DUNNO")
    testhost.exec(["rm", "-f", "/etc/postgrey/whitelist_clients.local"])
    testhost.exec(testhost.commands["postgrey_reload"])
    # Leave the shared host as it was: the client is greylisted again (a new triplet each try).
    wait_until(lambda: policy_query(testhost, client, f"{uuid.uuid4().hex}@sender.example",
                                    "x@mail.test"), 10,
               f"postgrey to greylist {client} again after the whitelist was removed",
               until=lambda action: "DEFER_IF_PERMIT" in action)


# --- lifecycle ------------------------------------------------------------------------------
def test_exec_reports_failures(testhost: TestHost) -> None:
    assert testhost.exec("echo hi").stdout == "hi\n"
    assert testhost.exec("exit 3", check=False).returncode == 3
    with pytest.raises(HostCommandError, match="boom"):
        testhost.exec("echo boom >&2; false")


def _leftovers(netns: str, veth: str, pids: list[int], base: Path) -> list[str]:
    found = []
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    if netns in [line.split()[0] for line in listed.splitlines() if line.strip()]:
        found.append(f"netns {netns}")  # by name: mailstate-1 is not mailstate-12
    if subprocess.run(["ip", "link", "show", veth], capture_output=True).returncode == 0:
        found.append(f"veth {veth}")
    found += [f"pid {p}" for p in pids if Path(f"/proc/{p}").exists()]
    if base.exists():
        found.append(f"dir {base}")
    return found


def test_stop_leaves_nothing_behind(testhost: TestHost, start_testhost) -> None:
    extra = start_testhost("extra", release=testhost.release)
    assert extra.ip != testhost.ip and extra.runner_ip != testhost.runner_ip
    assert extra.exec("hostname").stdout.strip() == "extra.test"
    assert extra.netns and extra._veth and extra.base
    netns, veth, base = extra.netns, extra._veth, extra.base
    listed = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    pids = [int(p) for p in listed.stdout.split()]
    assert len(pids) > 10  # init, master, smtpd, dovecot, sshd, postgrey, ...
    extra.stop()
    assert _leftovers(netns, veth, pids, base) == []
    extra.stop()  # a second stop is harmless
    # The shared host is unaffected.
    assert testhost.exec("hostname").stdout.strip() == "mail.test"


def test_runs_the_release_it_was_asked_for(testhost: TestHost) -> None:
    ssh_status, out, _ = ssh_run(testhost, "cat /etc/debian_version; dovecot --version")
    assert ssh_status == 0
    debian, dovecot = out.split()[:2]
    assert debian.split(".")[0] == testhost.release
    assert dovecot.startswith("2.4." if testhost.release == "13" else "2.3.")
    # POP3 answers (dovecot-pop3d), as IMAP does.
    assert testhost.ports["pop3"] == 110


def test_hosts_make_no_paths_on_the_machine(testhost: TestHost, start_testhost) -> None:
    """Mount points a host needs are made inside its own mount namespace (or in the overlay of
    its release's root), never on the machine; a cached root stays as it was built."""
    paths = [*config.PRIVATE_PATHS, "/var/vmail/x"]
    before = {p: os.path.lexists(p) for p in paths}
    root = testhost.source
    root_before = {p: os.path.lexists(root / p.lstrip("/")) for p in paths}
    extra = start_testhost("paths", release=testhost.release)
    extra.exec("mkdir -p /var/vmail/x /var/lib/mailstate/y && touch /etc/mailname")
    for path in config.PRIVATE_PATHS:
        assert extra.host_path(path).exists(), path
    assert {p: os.path.lexists(p) for p in paths} == before
    if root != Path("/"):
        assert {p: os.path.lexists(root / p.lstrip("/")) for p in paths} == root_before
    extra.stop()
    assert {p: os.path.lexists(p) for p in paths} == before


def test_cached_root_is_rebuilt_when_stale_or_broken(tmp_path: Path, monkeypatch) -> None:
    """The decision alone (a build takes half a minute): stamp, age and marker files."""
    root = tmp_path / "root"
    for marker in rootfs._MARKERS:
        (root / marker).parent.mkdir(parents=True, exist_ok=True)
        (root / marker).touch()
    wanted = {"suite": "trixie", "packages": sorted(rootfs.PACKAGES), "mirror": "http://m/debian"}
    stamp = tmp_path / "stamp.json"
    stamp.write_text(json.dumps({**wanted, "built": time.time()}))
    assert rootfs._usable(root, stamp, wanted)
    assert not rootfs._usable(root, stamp, {**wanted, "packages": ["postfix"]})  # other set
    stamp.write_text(json.dumps({**wanted, "built": time.time() - rootfs.MAX_AGE - 1}))
    assert not rootfs._usable(root, stamp, wanted)  # stale
    stamp.write_text(json.dumps({**wanted, "built": time.time()}))
    (root / "usr/sbin/dovecot").unlink()
    assert not rootfs._usable(root, stamp, wanted)  # broken
    stamp.write_text("{half written")
    assert not rootfs._usable(root, stamp, wanted)


def test_partial_start_is_cleaned_up(release: str, monkeypatch) -> None:
    host = TestHost("broken", release=release)
    made: dict[str, object] = {}

    def fail() -> None:
        made.update(netns=host.netns, veth=host._veth, base=host.base)
        raise RuntimeError("simulated failure after the network and files were made")

    monkeypatch.setattr(host, "_launch", fail)
    with pytest.raises(RuntimeError, match="simulated"):
        host.start()
    assert made["netns"] and made["veth"] and made["base"]
    assert _leftovers(str(made["netns"]), str(made["veth"]), [], Path(str(made["base"]))) == []
    assert host.netns is None and host.base is None and host.sink is None
