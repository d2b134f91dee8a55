"""Where mailstate's files live on a server, and what a server told us about itself.

A ``Layout`` is configuration (Debian's paths by default, overridable per server in
``mailstate.yaml``). ``Facts`` are read from the live server in the same round trip as its
files (Dovecot version, Postfix's default map type) and decide the syntax render must use.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from mailstate.model.values import DomainName, Login

MANAGED_HEADER = "managed by mailstate"
_PATH = re.compile(r"(/[A-Za-z0-9._+-]+)+")


def _server_path(value: str) -> str:
    """Server paths go into shell lists, configuration files and tar names: keep them plain."""
    if not _PATH.fullmatch(value) or any(p in (".", "..") for p in value.split("/")):
        raise ValueError(f"{value!r} must be an absolute path of letters, digits and . _ + - "
                         "(no spaces, no '..', no trailing '/')")
    return value


def _queue_path(value: str) -> str:
    """A path inside Postfix's queue directory (where smtpd runs chrooted): relative, and
    never climbing out of it with '..'."""
    if value.startswith("/") or any(p in ("", ".", "..") for p in value.split("/")):
        raise ValueError(f"{value!r} must be a path inside Postfix's queue directory, e.g. "
                         "private/dovecot-lmtp (relative, no '.' or '..' parts)")
    return value


ServerPath = Annotated[str, AfterValidator(_server_path)]
QueuePath = Annotated[str, AfterValidator(_queue_path)]


class KeptHome(BaseModel):
    """A mailbox whose mail stays where another tool put it (e.g. Virtualmin's
    ``/home/<owner>/homes/<user>``), owned by that tool's Unix user.

    It lives in the operator's ``mailstate.yaml``, not in a domain file: a home names a
    directory with someone's mail, which a customer's file must never be able to choose. It
    applies only to the login *at this domain*, so that a login removed from one domain and
    reused in another never reaches the old mail.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    domain: DomainName = Field(description="the domain the mailbox belongs to")
    home: ServerPath = Field(description="the home directory; mail is in home/Maildir")
    uid: int = Field(ge=1000, le=2**31 - 1, description="owner of the Maildir (not a system "
                     "account: at least 1000)")
    gid: int = Field(ge=1000, le=2**31 - 1, description="group of the Maildir (at least 1000)")


class Layout(BaseModel):
    """Absolute paths on the server. Everything mailstate writes is under these."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    postfix_dir: ServerPath = Field(default="/etc/postfix/mailstate",
                                    description="Postfix virtual maps and recipient access map")
    dovecot_dir: ServerPath = Field(default="/etc/dovecot/mailstate",
                                    description="the Dovecot passwd-file")
    sieve_dir: ServerPath = Field(default="/etc/dovecot/mailstate/sieve",
                                  description="one Sieve script per mailbox with a vacation")
    dovecot_fragment: ServerPath = Field(default="/etc/dovecot/conf.d/99-mailstate.conf",
                                         description="Dovecot settings; must sort after "
                                         "90-sieve.conf")
    postgrey_default: ServerPath = Field(default="/etc/default/postgrey",
                                         description="postgrey's options (POSTGREY_OPTS)")
    postgrey_dir: ServerPath = Field(default="/etc/postgrey",
                                     description="whitelist_{clients,recipients}.local")
    state_dir: ServerPath = Field(default="/var/lib/mailstate",
                                  description="manifest, generations, lock")
    vmail_dir: ServerPath = Field(default="/var/vmail",
                                  description="mailbox homes: vmail_dir/domain/login")
    vmail_uid: int = Field(default=5000, ge=1, le=2**31 - 1,
                           description="user id owning the mail")
    vmail_gid: int = Field(default=5000, ge=1, le=2**31 - 1,
                           description="group id owning the mail")
    homes: dict[Login, KeptHome] = Field(
        default_factory=dict, description="login -> home kept where another tool made it "
        "(written by `mailstate import --from virtualmin`)")
    postgrey_inet: str = Field(default="127.0.0.1:10023",
                               pattern=r"^[A-Za-z0-9.:\[\]-]+:\d{1,5}$",
                               description="where postgrey listens, HOST:PORT")
    lmtp_socket: QueuePath = Field(default="private/dovecot-lmtp",
                                   pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$",
                                   description="Dovecot's LMTP socket, relative to Postfix's queue "
                                   "directory")
    quota_status_socket: QueuePath = Field(
        default="private/dovecot-quota-status", pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$",
        description="Dovecot's quota-status policy socket (Postfix asks it at RCPT whether the "
        "mailbox has room), relative to Postfix's queue directory")

    def home_of(self, login: str, domain: str) -> tuple[str, int, int]:
        """(home, uid, gid) of a mailbox: a kept home, or vmail_dir/domain/login."""
        kept = self.homes.get(login)
        if kept is not None and kept.domain == domain:
            return kept.home, kept.uid, kept.gid
        return f"{self.vmail_dir}/{domain}/{login}", self.vmail_uid, self.vmail_gid

    def first_valid_ids(self) -> tuple[int, int]:
        """Dovecot's first_valid_uid/gid: the lowest owner of any mailbox."""
        return (min([self.vmail_uid, *(k.uid for k in self.homes.values())]),
                min([self.vmail_gid, *(k.gid for k in self.homes.values())]))


class Facts(BaseModel):
    """What the live server reported about itself."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    dovecot_version: str = "2.3.19"
    postfix_version: str = "3.7.11"
    db_type: str = "hash"  # `postconf -h default_database_type`
    # `doveconf -h protocols`: what the welcome mail and the new-domain notice may name; empty
    # when unknown (a local target): the welcome mail then names IMAP only, the one protocol
    # mailstate needs the operator to install (POP3 is dovecot-pop3d, optional).
    protocols: tuple[str, ...] = ()
    ssl: str = ""  # `doveconf -h ssl`: yes, required or no
    myhostname: str = ""  # `postconf -h myhostname`: the name clients reach the server by

    @property
    def dovecot24(self) -> bool:
        major, minor = [*self.dovecot_version.split("."), "0", "0"][:2]
        return (int(major), int(minor)) >= (2, 4)


class RenderedFile(BaseModel):
    """One file mailstate owns on a server, with the daemon that must reload when it changes."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    path: str  # absolute server path
    content: bytes
    mode: int = 0o644
    service: str  # "postfix", "dovecot" or "postgrey"
    group: str = "root"  # owning group (owner is root); the Dovecot passwd-file needs "dovecot"
    postmap: bool = False  # a Postfix lookup table that needs `postmap` after writing


class Rendered(BaseModel):
    """All files of one server plus the main.cf settings applied with `postconf -e`."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    files: tuple[RenderedFile, ...]
    postfix_settings: dict[str, str]

    def by_path(self) -> dict[str, RenderedFile]:
        return {f.path: f for f in self.files}
