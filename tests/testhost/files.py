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


def prepare(base: Path, fqdn: str, addrs: Addresses) -> None:
    """Write the host's files under base: root/, mounts, init.sh, id_ed25519, known_hosts."""
    root = base / "root"
    _private_copies(root, fqdn, addrs)
    _postfix(base, root, fqdn, addrs)
    _dovecot(root, fqdn)
    _sshd(base, root, fqdn, addrs)
    restart = root / "usr/local/sbin/testhost-restart-postgrey"
    shutil.copy(_HERE / "restart-postgrey.sh", restart)
    restart.chmod(0o755)
    (base / "mounts").write_text("".join(f"{p} {p}\n" for p in config.PRIVATE_PATHS))
    shutil.copy(_HERE / "init.sh", base / "init.sh")
    (base / "init.sh").chmod(0o755)


def _private_copies(root: Path, fqdn: str, addrs: Addresses) -> None:
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
            run("cp", "-a", path, dst)
        elif kind == "empty":
            dst.mkdir(mode=0o755)
        elif kind == "home":
            dst.mkdir(mode=0o700)
            for skel in Path("/etc/skel").glob(".*"):
                shutil.copy(skel, dst / skel.name)
        else:
            dst.write_text(files[path])
            dst.chmod(0o644)
        _ensure_mount_point(path, is_dir=kind != "file")
    os.chown(root / "var/vmail", config.VMAIL_UID, config.VMAIL_GID)


def _ensure_mount_point(path: str, is_dir: bool) -> None:
    """Bind mounts need an existing target; create an empty one on the machine if missing.

    Only paths a Debian mail server has anyway (/etc/mailname, /etc/aliases.db, /var/vmail,
    /var/lib/mailstate); the machine's real configuration is never touched.
    """
    if os.path.lexists(path):
        return
    if is_dir:
        os.makedirs(path, mode=0o755, exist_ok=True)
    else:
        Path(path).touch(mode=0o644)


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


def _dovecot(root: Path, fqdn: str) -> None:
    """Stock config + test fragment, a self-signed certificate at the stock paths (parsed
    even with ssl = no), and the documented one-time operator step: no PAM passdb."""
    dovecot = root / "etc/dovecot"
    (dovecot / "conf.d" / config.DOVECOT_FRAGMENT_NAME).write_text(config.DOVECOT_FRAGMENT)
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
