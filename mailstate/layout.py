"""Where mailstate's files live on a server, and what a server told us about itself.

A ``Layout`` is configuration (Debian's paths by default, overridable per server in
``mailstate.yaml``). ``Facts`` are read from the live server in the same round trip as its
files (Dovecot version, Postfix's default map type) and decide the syntax render must use.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

MANAGED_HEADER = "managed by mailstate"


class Layout(BaseModel):
    """Absolute paths on the server. Everything mailstate writes is under these."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    postfix_dir: str = "/etc/postfix/mailstate"  # virtual maps, recipient access map
    dovecot_dir: str = "/etc/dovecot/mailstate"  # passwd-file
    sieve_dir: str = "/etc/dovecot/mailstate/sieve"  # one script per mailbox that needs one
    dovecot_fragment: str = "/etc/dovecot/conf.d/99-mailstate.conf"  # sorts after 90-sieve
    postgrey_default: str = "/etc/default/postgrey"  # POSTGREY_OPTS
    postgrey_dir: str = "/etc/postgrey"  # whitelist_{clients,recipients}.local
    state_dir: str = "/var/lib/mailstate"  # manifest, generations, lock
    vmail_dir: str = "/var/vmail"  # mailbox homes: vmail_dir/domain/login
    vmail_uid: int = 5000
    vmail_gid: int = 5000
    postgrey_inet: str = "127.0.0.1:10023"
    lmtp_socket: str = "private/dovecot-lmtp"  # relative to Postfix's queue directory


class Facts(BaseModel):
    """What the live server reported about itself."""

    model_config = ConfigDict(frozen=True)

    dovecot_version: str = "2.3.19"
    postfix_version: str = "3.7.11"
    db_type: str = "hash"  # `postconf -h default_database_type`

    @property
    def dovecot24(self) -> bool:
        major, minor = [*self.dovecot_version.split("."), "0", "0"][:2]
        return (int(major), int(minor)) >= (2, 4)


class RenderedFile(BaseModel):
    """One file mailstate owns on a server, with the daemon that must reload when it changes."""

    model_config = ConfigDict(frozen=True)

    path: str  # absolute server path
    content: bytes
    mode: int = 0o644
    service: str  # "postfix", "dovecot" or "postgrey"
    group: str = "root"  # owning group (owner is root); the Dovecot passwd-file needs "dovecot"
    postmap: bool = False  # a Postfix lookup table that needs `postmap` after writing


class Rendered(BaseModel):
    """All files of one server plus the main.cf settings applied with `postconf -e`."""

    model_config = ConfigDict(frozen=True)

    files: tuple[RenderedFile, ...]
    postfix_settings: dict[str, str]

    def by_path(self) -> dict[str, RenderedFile]:
        return {f.path: f for f in self.files}
