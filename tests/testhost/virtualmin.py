"""A server as Virtualmin leaves it, written from Virtualmin's own formats.

``build(root)`` writes, under `root` (a local target's directory, or a test host's private
files), what Virtualmin (virtualmin-gpl, Postfix mode) keeps about mail: domain and plan
records under /etc/webmin/virtual-server/, /etc/postfix/virtual, /etc/aliases, the users in
passwd/shadow/group, homes with Maildirs that already hold mail, autoreply files, postgrey's
recipient whitelist. Two customers, every naming style, a copy-mode and a catch-all-mode
alias domain, forwards with and without a copy, an autoreply, an alias with several targets.

``EXPECTED`` says where each address delivers on Virtualmin: the test of an adoption is that
it still delivers there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from passlib.hash import md5_crypt, sha512_crypt

from .files import run
from .host import TestHost

UID = 20001  # first uid/gid of the fixture's users; far from the machine's own


@dataclass(frozen=True)
class User:
    name: str  # the Unix name, as Virtualmin made it
    uid: int
    gid: int
    gecos: str
    home: str
    password: str
    scheme: str  # how /etc/shadow holds it


def yescrypt(password: str) -> str | None:
    """A yescrypt hash made by the system's libxcrypt (Debian's default scheme), if any."""
    name = ctypes.util.find_library("crypt")
    if not name:
        return None
    lib = ctypes.CDLL(name)
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt.restype = ctypes.c_char_p
    salt = lib.crypt_gensalt(b"$y$", 0, None, 0)
    made = lib.crypt(password.encode(), salt) if salt else None
    return made.decode() if made and made.startswith(b"$y$") else None


def _hash(user: User) -> str:
    if user.scheme == "md5":
        return md5_crypt.hash(user.password)
    if user.scheme == "yescrypt":
        return yescrypt(user.password) or sha512_crypt.using(rounds=5000).hash(user.password)
    if user.scheme == "locked":
        return "!" + sha512_crypt.using(rounds=5000).hash(user.password)
    return sha512_crypt.using(rounds=5000).hash(user.password)


M, B = UID, UID + 100  # the two customers' group ids
USERS = [
    # customer 1: monsite, names in the user.prefix style
    User("monsite", M, M, "Domain administrator,,,", "/home/monsite", "Adm1n-pass", "sha512"),
    User("jan.monsite", M + 1, M, "Jan Janssens", "/home/monsite/homes/jan", "Jan-pass1",
         "sha512"),
    User("piet.monsite", M + 2, M, "Piet Peeters", "/home/monsite/homes/piet", "Piet-pass1",
         "md5"),
    User("els.monsite", M + 3, M, "Els Elsen", "/home/monsite/homes/els", "Els-pass1",
         "yescrypt"),
    User("oud.monsite", M + 4, M, "Locked user", "/home/monsite/homes/oud", "Oud-pass1",
         "locked"),
    # a sub-server of the same customer: its users live under the sub-server's home
    User("marie.monsiteeu", M + 5, M, "Marie", "/home/monsite/domains/monsite.eu/homes/marie",
         "Marie-pass1", "sha512"),
    # customer 2: bakker, names in the user@domain and plain styles
    User("bakker", B, B, "Bakkerij Peeters", "/home/bakker", "Bakker-pass1", "sha512"),
    User("anna@bakkerij.be", B + 1, B, "Anna", "/home/bakker/homes/anna", "Anna-pass1",
         "sha512"),
    User("kees", B + 2, B, "Kees", "/home/bakker/homes/kees", "Kees-pass1", "md5"),
]
BY_NAME = {u.name: u for u in USERS}

DOMAINS = {
    "101": {"id": "101", "dom": "monsite.be", "user": "monsite", "group": "monsite",
            "uid": str(M), "gid": str(M), "ugid": str(M), "home": "/home/monsite",
            "prefix": "monsite", "mail": "1", "web": "1", "plan": "1",
            "emailto": "owner@monsite.example", "email": "owner@monsite.example",
            "mailboxlimit": "10", "domslimit": "5", "aliasdomslimit": "", "quota": "31457280",
            "uquota": "31457280"},
    "102": {"id": "102", "dom": "monsite.com", "user": "monsite", "group": "monsite",
            "uid": str(M), "gid": str(M), "home": "/home/monsite/domains/monsite.com",
            "prefix": "monsite", "mail": "1", "alias": "101", "parent": "101",
            "aliascopy": "1"},
    "103": {"id": "103", "dom": "monsite.eu", "user": "monsite", "group": "monsite",
            "uid": str(M), "gid": str(M), "home": "/home/monsite/domains/monsite.eu",
            "prefix": "monsiteeu", "mail": "1", "parent": "101"},
    "201": {"id": "201", "dom": "bakkerij.be", "user": "bakker", "group": "bakker",
            "uid": str(B), "gid": str(B), "ugid": str(B), "home": "/home/bakker",
            "prefix": "bakkerij", "mail": "1", "plan": "2",
            "emailto": "bakker@bakkerij.be", "mailboxlimit": "3", "domslimit": "1",
            "quota": "3145728"},
    "202": {"id": "202", "dom": "bakkerij.nl", "user": "bakker", "group": "bakker",
            "uid": str(B), "gid": str(B), "home": "/home/bakker/domains/bakkerij.nl",
            "prefix": "bakkerij", "mail": "1", "alias": "201", "parent": "201",
            "aliascopy": "0"},
    "301": {"id": "301", "dom": "website-only.be", "user": "webonly", "group": "webonly",
            "uid": str(UID + 200), "gid": str(UID + 200), "home": "/home/webonly",
            "mail": "0", "web": "1"},
}
PLANS = {
    "1": {"id": "1", "name": "Recommended", "quota": "31457280", "mailboxlimit": "10",
          "domslimit": "5"},
    "2": {"id": "2", "name": "Small business", "quota": "3145728", "mailboxlimit": "3",
          "domslimit": "1"},
}

AUTOREPLY_FILE = "/home/monsite/autoreply-els@monsite.be.txt"
AUTOREPLY = """Reply-Tracking: /home/monsite/replies-els@monsite.be
Reply-Period: 600
From: els@monsite.be
Subject: Out of office

I am away until 5 January.
Your mail is read when I am back.
"""

# The lines of /etc/postfix/virtual for monsite.be; its copy-mode alias repeats each one.
_MONSITE = [
    ("monsite", "monsite"),
    ("jan", "jan-monsite.be"),  # forward with a copy: an /etc/aliases entry
    ("info", "jan.monsite"),  # an extra address of jan's mailbox
    ("piet", "piet-monsite.be"),  # forward without a copy
    ("els", "els-monsite.be"),  # autoreply
    ("oud", "oud.monsite"),
    ("sales", "sales-monsite.be"),  # an alias with several targets
    ("frederic", "frederic@example.org"),  # forward-only alias
    ("postmaster", "monsite"),
    ("abuse", "monsite"),
]
ALIASES = {
    "jan-monsite.be": "\\jan.monsite,jan@example.org",
    "piet-monsite.be": "piet@example.org",
    "els-monsite.be": f'\\els.monsite,"|/etc/webmin/virtual-server/autoreply.pl '
                      f'{AUTOREPLY_FILE} els.monsite"',
    "sales-monsite.be": "jan.monsite,extern@example.org",
    "anna-bakkerij.be": "\\anna\\@bakkerij.be",
}


def virtual_lines() -> list[str]:
    out = ["monsite.be\tmonsite.be"]
    out += [f"{local}@monsite.be\t{dest}" for local, dest in _MONSITE]
    out += ["monsite.com\tmonsite.com"]
    out += [f"{local}@monsite.com\t{dest}" for local, dest in _MONSITE]  # copy mode
    out += ["monsite.eu\tmonsite.eu", "marie@monsite.eu\tmarie.monsiteeu"]
    out += [
        "bakkerij.be\tbakkerij.be",
        "bakker@bakkerij.be\tbakker",
        # user@domain style: Postfix cannot name the Unix user in the virtual table (a value
        # `anna\\@bakkerij.be` is the address itself again); Virtualmin's -domain alias does
        "anna@bakkerij.be\tanna-bakkerij.be",
        "kees@bakkerij.be\tkees",
        "@bakkerij.be\tanna-bakkerij.be",  # catch-all
        "bakkerij.nl\tbakkerij.nl",
        "@bakkerij.nl\t@bakkerij.be",  # catch-all-mode alias domain
    ]
    return out


# Where mail to each address lands on Virtualmin: mailbox homes (Unix user) and outside
# addresses (forwards); "reply" means an autoreply answers.
EXPECTED: dict[str, set[str]] = {
    "monsite@monsite.be": {"monsite"},
    "jan@monsite.be": {"jan.monsite", "jan@example.org"},
    "info@monsite.be": {"jan.monsite"},
    "piet@monsite.be": {"piet@example.org"},
    "els@monsite.be": {"els.monsite", "reply"},
    "sales@monsite.be": {"jan.monsite", "extern@example.org"},
    "frederic@monsite.be": {"frederic@example.org"},
    "postmaster@monsite.be": {"monsite"},
    "info@monsite.com": {"jan.monsite"},
    "piet@monsite.com": {"piet@example.org"},
    "marie@monsite.eu": {"marie.monsiteeu"},
    "bakker@bakkerij.be": {"bakker"},
    "anna@bakkerij.be": {"anna@bakkerij.be"},
    "kees@bakkerij.be": {"kees"},
    "whoever@bakkerij.be": {"anna@bakkerij.be"},
    "kees@bakkerij.nl": {"kees"},
    "whoever@bakkerij.nl": {"anna@bakkerij.be"},
}
# Where mailstate cannot do what Virtualmin did, and the import says so: in mailstate a
# mailbox's forward applies to all its addresses, on Virtualmin to its own address only.
CHANGED_BY_MAILSTATE: dict[str, set[str]] = {
    "info@monsite.be": {"jan.monsite", "jan@example.org"},
    "info@monsite.com": {"jan.monsite", "jan@example.org"},
    "sales@monsite.be": {"jan.monsite", "jan@example.org", "extern@example.org"},
}
OLD_MESSAGES = {u.name: f"<old-{u.uid}@virtualmin.test>" for u in USERS}


def _message(user: User) -> bytes:
    return (f"From: someone@example.org\r\nTo: {user.name}\r\n"
            f"Subject: kept from Virtualmin\r\nMessage-ID: {OLD_MESSAGES[user.name]}\r\n"
            f"\r\nThis was in the mailbox before mailstate.\r\n").encode()


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _append(path: Path, lines: list[str], mode: int = 0o644) -> None:
    old = path.read_text() if path.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    _write(path, old + "".join(line + "\n" for line in lines), mode)


def build(root: Path, owners: bool = False, whitelist_client: str | None = None) -> None:
    """Write the fixture under `root`. With `owners`, homes are chowned to their users
    (as root, on a test host whose passwd is its own). `whitelist_client` goes into
    postgrey's client whitelist (the test runner's address)."""
    base = root / "etc/webmin/virtual-server"
    for rid, rec in DOMAINS.items():
        _write(base / "domains" / rid, "".join(f"{k}={v}\n" for k, v in rec.items()), 0o600)
    for pid, rec in PLANS.items():
        _write(base / "plans" / pid, "".join(f"{k}={v}\n" for k, v in rec.items()), 0o600)
    _append(root / "etc/postfix/virtual", virtual_lines())
    _append(root / "etc/aliases", [f"{k}: {v}" for k, v in ALIASES.items()])
    groups = {"monsite": M, "bakker": B}
    _append(root / "etc/passwd", [f"{u.name}:x:{u.uid}:{u.gid}:{u.gecos}:{u.home}:/bin/false"
                                  for u in USERS])
    _append(root / "etc/shadow", [f"{u.name}:{_hash(u)}:20000:0:99999:7:::" for u in USERS],
            0o640)
    _append(root / "etc/group", [f"{g}:x:{gid}:" for g, gid in groups.items()])
    _append(root / "etc/postgrey/whitelist_recipients", ["postmaster@", "bakkerij.be"])
    if whitelist_client:
        _append(root / "etc/postgrey/whitelist_clients.local", [whitelist_client])
    _write(root / "etc/default/postgrey", 'POSTGREY_OPTS="--inet=10023 --delay=60 '
           '--auto-whitelist-clients=0"\n')
    for user in USERS:
        home = root / user.home.lstrip("/")
        for sub in ("cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp"):
            (home / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
        (home / "Maildir/cur/1700000000.M1P1.virtualmin:2,S").write_bytes(_message(user))
        if owners:
            for dirpath, _dirs, names in os.walk(home):
                os.chown(dirpath, user.uid, user.gid)
                for name in names:
                    os.chown(os.path.join(dirpath, name), user.uid, user.gid)
            home.chmod(0o750)
    _write(root / AUTOREPLY_FILE.lstrip("/"), AUTOREPLY)
    _write(root / "home/monsite/homes/piet/.procmailrc", ":0\n* ^Subject:.*spam\n/dev/null\n")
    if owners:
        for path in (AUTOREPLY_FILE, "/home/monsite/homes/piet/.procmailrc"):
            owner = BY_NAME["monsite" if "autoreply" in path else "piet.monsite"]
            os.chown(root / path.lstrip("/"), owner.uid, owner.gid)


# Postfix as Virtualmin sets it up: addresses through /etc/postfix/virtual to Unix users,
# delivered by local(8) into ~/Maildir/, postgrey asked for every recipient.
VIRTUALMIN_MAIN_CF = """
# --- as Virtualmin configures Postfix
mydestination = $myhostname, localhost
virtual_alias_maps = hash:/etc/postfix/virtual
home_mailbox = Maildir/
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination, \
    check_policy_service inet:127.0.0.1:10023
"""
# Private to the host, so that the fixture's Unix users never reach the machine's own files.
# /etc/webmin is usually missing: the init makes its mount point inside the host's own mount
# namespace (as for /var/vmail), never on the machine.
PRIVATE = ("/etc/passwd", "/etc/shadow", "/etc/group", "/home", "/etc/webmin")


class VirtualminHost(TestHost):
    """A test host laid out as Virtualmin leaves a server (see ``build``).

    Its passwd, shadow, group, /home and /etc/webmin are private copies, bind-mounted like
    the base host's other private files: the fixture's users exist inside the host only.
    `release` as for TestHost: on Debian 13 passwd, shadow and group are the cached root's.
    """

    def __init__(self, name: str = "vmin", domain: str = "test",
                 builder: Callable[[Path], None] | None = None,
                 release: str | None = None) -> None:
        """`builder(root)` writes the Virtualmin server (default: ``build``, owners set)."""
        super().__init__(name, domain, release)
        self.builder = builder

    def _launch(self) -> None:
        base = self._need(self.base)
        root = base / "root"
        for path in PRIVATE[:3]:
            shutil.copy2(self.source / path.lstrip("/"), root / path.lstrip("/"))
        (root / "home").mkdir(mode=0o755)
        (root / "etc/webmin").mkdir(mode=0o755)
        if self.builder is None:
            build(root, owners=True, whitelist_client=self.runner_ip)
        else:
            self.builder(root)
        main_cf = root / "etc/postfix/main.cf"
        stock = [line for line in main_cf.read_text().splitlines(keepends=True)
                 if not line.startswith("mydestination")]
        main_cf.write_text("".join(stock) + VIRTUALMIN_MAIN_CF)
        old = time.time() - 60
        os.utime(main_cf, (old, old))
        bare = base / "postalias-conf"  # made by files.prepare; see there why
        run("postalias", "-c", bare, f"hash:{root}/etc/aliases")
        run("postmap", "-c", bare, f"hash:{root}/etc/postfix/virtual")
        with open(base / "mounts", "a") as mounts:
            mounts.write("".join(f"{p} {p}\n" for p in PRIVATE))
        super()._launch()
