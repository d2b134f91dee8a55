"""A Virtualmin server whose Unix users are named ``user@domain`` (Virtualmin's other naming
style), with what the first fixture (``virtualmin.py``) lacks: forwards in /etc/aliases under
Virtualmin's ``-domain`` keys, and entries under the escaped and quoted user names that
Postfix never reads; extra addresses on the mailbox's own line or naming its address (so
its forward applies to them, as in mailstate), a domain whose
mail the provider disabled, a locked mailbox, and text mailstate cannot carry (an alias named
``&anchor``, one named ``sales:x``, an autoreply From: at another domain, a limit written with
'²').

``EXPECTED`` says where each address delivers on Virtualmin (Postfix's reading of the files);
``ANNOUNCED`` the addresses whose routing the import changes, each with a warning.
"""

from __future__ import annotations

import os
from pathlib import Path

from .virtualmin import UID, User, VirtualminHost, _append, _hash, _write

A, F = UID + 400, UID + 500  # the customers' group ids
USERS = [
    User("autre", A, A, "Autre SPRL", "/home/autre", "Autre-pass1", "sha512"),
    User("jean@autre.be", A + 1, A, "Jean", "/home/autre/homes/jean", "Jean-pass1", "sha512"),
    User("marc@autre.be", A + 2, A, "Marc", "/home/autre/homes/marc", "Marc-pass1", "sha512"),
    User("lena@autre.be", A + 3, A, "Lena", "/home/autre/homes/lena", "Lena-pass1", "sha512"),
    User("sophie@autre.be", A + 4, A, "Sophie", "/home/autre/homes/sophie", "Sophie-pass1",
         "sha512"),
    User("oud@autre.be", A + 5, A, "Locked", "/home/autre/homes/oud", "Oud-pass1", "locked"),
    # a customer whose mail the provider disabled (for non-payment): its hashes are locked
    User("ferme", F, F, "Ferme", "/home/ferme", "Ferme-pass1", "locked"),
    User("paul@ferme.be", F + 1, F, "Paul", "/home/ferme/homes/paul", "Paul-pass1", "locked"),
]
BY_NAME = {u.name: u for u in USERS}

DOMAINS = {
    "401": {"id": "401", "dom": "autre.be", "user": "autre", "group": "autre", "uid": str(A),
            "gid": str(A), "home": "/home/autre", "prefix": "autre", "mail": "1",
            "emailto": "autre@autre.be", "mailboxlimit": "1²", "quota": "3145728"},
    "501": {"id": "501", "dom": "ferme.be", "user": "ferme", "group": "ferme", "uid": str(F),
            "gid": str(F), "home": "/home/ferme", "prefix": "ferme", "mail": "1",
            "disabled": "mail,web", "disabled_reason": "payment", "emailto": "ferme@ferme.be"},
}

SOPHIE_REPLY = "/home/autre/autoreply-sophie@autre.be.txt"
AUTOREPLY = ("Reply-Period: 3600\nFrom: Sophie <sophie@elsewhere.example>\n"
             "Subject: Away\n\nBack on Monday.\n")
# Postfix cannot name a user@domain Unix user in the virtual table (`jean\\@autre.be` there is
# the address itself again); Virtualmin's `-domain` alias in /etc/aliases names it.
VIRTUAL = [
    "autre.be\tautre.be",
    "autre@autre.be\tautre",
    "jean@autre.be\tjean-autre.be",  # forward, no copy
    "contact@autre.be\tjean-autre.be",  # extra address: the same line as jean's own
    "marc@autre.be\tmarc-autre.be",  # forward with a copy
    "lena@autre.be\tlena-autre.be",  # forward with a copy
    "info@autre.be\tlena\\@autre.be",  # extra address: the address lena@ again
    "sophie@autre.be\tsophie-autre.be",  # autoreply, From: at another domain
    "oud@autre.be\toud-autre.be",  # a locked mailbox
    "&anchor@autre.be\tjean-autre.be",  # names mailstate cannot write
    "sales:x@autre.be\tmarc-autre.be",
    "team@autre.be\tmarc-autre.be,lena@example.net",  # an alias with an outside target
    "ferme.be\tferme.be",
    "ferme@ferme.be\tferme",
    "paul@ferme.be\tpaul-ferme.be",
    "@ferme.be\tferme",
]
ALIASES = [
    "jean-autre.be: jean.perso@example.org",  # forward without a copy
    "marc-autre.be: \\marc\\@autre.be, marc@example.net",  # forward with a copy
    "lena-autre.be: \\lena\\@autre.be, lena@example.net",
    f'sophie-autre.be: \\sophie\\@autre.be, "|/etc/webmin/virtual-server/autoreply.pl '
    f'{SOPHIE_REPLY} sophie@autre.be"',
    "oud-autre.be: \\oud\\@autre.be",
    "paul-ferme.be: paul@example.org",
    # The user's own name as key, escaped or quoted: postalias keys both as jean@autre.be,
    # but Postfix never asks for it here (local(8) gets jean-autre.be; an address
    # "jean@autre.be"@localhost matches the virtual table's jean@autre.be again: a loop, proven
    # on a test host). The import follows Postfix and does not take it for a forward.
    "jean\\@autre.be: someone.else@example.org",
    '"marc@autre.be": someone.else@example.org',
]

EXPECTED: dict[str, set[str]] = {
    "autre@autre.be": {"mailbox autre"},
    "jean@autre.be": {"jean.perso@example.org"},
    "contact@autre.be": {"jean.perso@example.org"},
    "marc@autre.be": {"mailbox marc@autre.be", "marc@example.net"},
    "lena@autre.be": {"mailbox lena@autre.be", "lena@example.net"},
    "info@autre.be": {"mailbox lena@autre.be", "lena@example.net"},
    "sophie@autre.be": {"mailbox sophie@autre.be", "reply"},
    "oud@autre.be": {"mailbox oud@autre.be"},
    "&anchor@autre.be": {"jean.perso@example.org"},
    "sales:x@autre.be": {"mailbox marc@autre.be", "marc@example.net"},
    "team@autre.be": {"mailbox marc@autre.be", "marc@example.net", "lena@example.net"},
    "ferme@ferme.be": set(),  # disabled: refused
    "paul@ferme.be": set(),
    "@ferme.be": set(),
}
# What the import leaves out, each with a warning: a locked mailbox and names mailstate
# cannot write now refuse mail.
ANNOUNCED = {"oud@autre.be": "oud@autre.be not imported",
             "&anchor@autre.be": "&anchor@autre.be not imported",
             "sales:x@autre.be": "sales:x@autre.be not imported"}


def build(root: Path, owners: bool = False, whitelist_client: str | None = None) -> None:
    """Write the server under `root` (as ``virtualmin.build``)."""
    base = root / "etc/webmin/virtual-server"
    for rid, rec in DOMAINS.items():
        _write(base / "domains" / rid, "".join(f"{k}={v}\n" for k, v in rec.items()), 0o600)
    _append(root / "etc/postfix/virtual", VIRTUAL)
    _append(root / "etc/aliases", ALIASES)
    _append(root / "etc/passwd", [f"{u.name}:x:{u.uid}:{u.gid}:{u.gecos}:{u.home}:/bin/false"
                                  for u in USERS])
    _append(root / "etc/shadow", [f"{u.name}:{_hash(u)}:20000:0:99999:7:::" for u in USERS],
            0o640)
    _append(root / "etc/group", [f"autre:x:{A}:", f"ferme:x:{F}:"])
    _append(root / "etc/postgrey/whitelist_recipients", ["postmaster@"])
    if whitelist_client:
        _append(root / "etc/postgrey/whitelist_clients.local", [whitelist_client])
    _write(root / "etc/default/postgrey", 'POSTGREY_OPTS="--inet=10023 --delay=60"\n')
    for user in USERS:
        home = root / user.home.lstrip("/")
        for sub in ("cur", "new", "tmp"):
            (home / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
        if owners:
            for dirpath, _dirs, _names in os.walk(home):
                os.chown(dirpath, user.uid, user.gid)
            home.chmod(0o750)
    _write(root / SOPHIE_REPLY.lstrip("/"), AUTOREPLY)


class AtStyleHost(VirtualminHost):
    """A test host laid out as this server (see ``VirtualminHost``)."""

    def __init__(self, name: str = "vmat", domain: str = "test",
                 release: str | None = None) -> None:
        super().__init__(name, domain, None, release)
        self.builder = lambda root: build(root, owners=True, whitelist_client=self.runner_ip)
