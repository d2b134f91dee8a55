"""The private files of one test host, prepared on the runner side before its init starts.

Everything lands under BASE/root/<standard path>; the init bind-mounts each entry of
config.PRIVATE_PATHS over the standard path inside the host's mount namespace.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from . import config
from .config import Addresses

_HERE = Path(__file__).resolve().parent


def run(*cmd: str | os.PathLike[str]) -> str:
    """Run a runner-side command; raise with its stderr on failure."""
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise subprocess.CalledProcessError(res.returncode, res.args, res.stdout, res.stderr)
    return res.stdout


def prepare(base: Path, fqdn: str, addrs: Addresses, source: Path = Path("/")) -> None:
    """Write the host's files under base: root/, mounts, init.sh, id_ed25519, known_hosts.

    source is the root the host runs on: the machine's own, or a cached root of another
    Debian release (its stock configuration is what gets copied).
    """
    root = base / "root"
    _private_copies(root, fqdn, addrs, source)
    _postfix(base, root, fqdn, addrs)
    _dovecot(root, fqdn, dovecot24=_dovecot24(source))
    _sshd(base, root, fqdn, addrs)
    restart = root / "usr/local/sbin/testhost-restart-postgrey"
    shutil.copy(_HERE / "restart-postgrey.sh", restart)
    restart.chmod(0o755)
    (base / "mounts").write_text("".join(f"{p} {p}\n" for p in config.PRIVATE_PATHS))
    shutil.copy(_HERE / "init.sh", base / "init.sh")
    (base / "init.sh").chmod(0o755)


def _dovecot24(source: Path) -> bool:
    """Is the Dovecot of this root 2.4 or later? (Its package records the version.)"""
    status = (source / "var/lib/dpkg/status").read_text()
    pattern = r"^Package: dovecot-core\n(?:[^\n]+\n)*?Version: (?:\d+:)?(\d+)\.(\d+)"
    m = re.search(pattern, status, re.M)
    if m is None:
        raise RuntimeError(f"dovecot-core is not installed in {source}")
    return (int(m.group(1)), int(m.group(2))) >= (2, 4)


def _private_copies(root: Path, fqdn: str, addrs: Addresses, source: Path) -> None:
    files = {
        "/etc/hosts": config.hosts_file(fqdn, addrs),
        "/etc/resolv.conf": config.RESOLV_CONF,
        "/etc/hostname": fqdn + "\n",
        "/etc/mailname": fqdn + "\n",
        "/etc/aliases": config.ALIASES,
        "/etc/aliases.db": "",
    }
    for path, kind in config.PRIVATE_PATHS.items():
        dst = root / path.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        if kind == "copy":
            run("cp", "-a", source / path.lstrip("/"), dst)
        elif kind == "empty":
            dst.mkdir(mode=0o755)
        elif kind == "home":
            dst.mkdir(mode=0o700)
            for skel in (source / "etc/skel").glob(".*"):
                shutil.copy(skel, dst / skel.name)
        else:
            dst.write_text(files[path])
            dst.chmod(0o644)
    # Missing mount points (/etc/mailname, /var/vmail, ...) are made by the init inside the
    # host's own mount namespace, never on the machine.
    os.chown(root / "var/vmail", config.VMAIL_UID, config.VMAIL_GID)


def _postfix(base: Path, root: Path, fqdn: str, addrs: Addresses) -> None:
    """Minimal main.cf, backdated: Postfix commands wait until main.cf is ~2 s old."""
    main_cf = root / "etc/postfix/main.cf"
    main_cf.write_text(config.main_cf(fqdn, addrs.runner_ip))
    old = time.time() - 60
    os.utime(main_cf, (old, old))
    # aliases.db is built here: inside the host it is a bind-mounted file, and postalias
    # removes an empty one before writing (EBUSY). A bare config dir, because the host's
    # main.cf reads /etc/mailname, which out here is the machine's empty mount point.
    bare = base / "postalias-conf"
    bare.mkdir()
    (bare / "main.cf").write_text("compatibility_level = 3.6\n")
    os.utime(bare / "main.cf", (old, old))
    run("postalias", "-c", bare, f"hash:{root}/etc/aliases")


def _dovecot(root: Path, fqdn: str, dovecot24: bool) -> None:
    """Stock config + test fragment, a self-signed certificate at the stock paths (parsed
    even with ssl = no), and the documented one-time operator step: no PAM passdb."""
    dovecot = root / "etc/dovecot"
    fragment = config.DOVECOT_FRAGMENT_24 if dovecot24 else config.DOVECOT_FRAGMENT
    (dovecot / "conf.d" / config.DOVECOT_FRAGMENT_NAME).write_text(fragment)
    auth = dovecot / "conf.d/10-auth.conf"
    stock = auth.read_text()
    auth.write_text(re.sub(r"^!include auth-system", "#!include auth-system", stock, flags=re.M))
    (root / config.DOVECOT_EMPTY_PASSWD.lstrip("/")).touch(mode=0o644)
    private = dovecot / "private"
    private.mkdir(mode=0o700, exist_ok=True)
    key, cert = private / "dovecot.key", private / "dovecot.pem"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650"]
    run("openssl", "req", "-x509", *ec, "-subj", f"/CN={fqdn}", "-keyout", key, "-out", cert)
    key.chmod(0o600)


def _sshd(base: Path, root: Path, fqdn: str, addrs: Addresses) -> None:
    """A fresh host key, and root login with a generated client key only."""
    ssh = root / "etc/ssh"
    for old_key in ssh.glob("ssh_host_*"):
        old_key.unlink()
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N"]
    run(*keygen, "", "-C", f"root@{fqdn}", "-f", ssh / "ssh_host_ed25519_key")
    run(*keygen, "", "-C", "mailstate-tests", "-f", base / "id_ed25519")
    (ssh / "sshd_config.d").mkdir(exist_ok=True)
    (ssh / "sshd_config.d" / config.SSHD_FRAGMENT_NAME).write_text(config.SSHD_FRAGMENT)
    keys = ssh / "authorized_keys"
    keys.mkdir(mode=0o755)
    shutil.copy(base / "id_ed25519.pub", keys / "root")
    (keys / "root").chmod(0o600)
    kind, b64 = (ssh / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    (base / "known_hosts").write_text(f"{addrs.host_ip} {kind} {b64}\n")
