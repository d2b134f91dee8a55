"""Where mailstate's files live on a server: the managed paths of a layout, what the one read
asks for, and which files are derived (postmap's maps, compiled Sieve) rather than written."""

from __future__ import annotations

from dataclasses import dataclass

from mailstate.model.layout import Layout

ALIAS_MAP = "virtual_aliases"
POSTFIX_MAPS = (
    "virtual_mailbox_domains", "virtual_alias_domains", "virtual_mailboxes", ALIAS_MAP,
    "recipient_access",
)



@dataclass(frozen=True)
class ManagedPaths:
    """What a transport reads in its one round trip: fixed files and directories of scripts."""

    files: tuple[str, ...]  # absolute paths; a missing one is simply absent from ``files``
    directories: dict[str, str]  # directory -> file name suffix to read from it (".sieve")


def managed_paths(layout: Layout) -> ManagedPaths:
    """Every path parse understands; render never writes anything else."""
    fixed = [f"{layout.postfix_dir}/{name}" for name in POSTFIX_MAPS]
    fixed += [
        f"{layout.dovecot_dir}/passwd",
        f"{layout.dovecot_dir}/logins",  # the names a mailbox logs in with (render.py)
        layout.dovecot_fragment,
        layout.postgrey_default,
        f"{layout.postgrey_dir}/whitelist_clients.local",
        f"{layout.postgrey_dir}/whitelist_recipients.local",
        f"{layout.dovecot_dir}/quota-warning.txt",  # the quota warning mail (quota_warning.py)
        f"{layout.dovecot_dir}/quota-warning.sh",
        f"{layout.state_dir}/read-only",  # the read-only key's program (readonly.py): no state
    ]
    return ManagedPaths(files=tuple(sorted(fixed)), directories={layout.sieve_dir: ".sieve"})


# What the server derives from mailstate's files: postmap's indexed tables, compiled Sieve.
DERIVED_SUFFIXES = (".db", ".lmdb", ".cdb", ".dbm", ".pag", ".dir", ".sdbm", ".svbin")


def derived(path: str, layout: Layout) -> bool:
    """A file made from a managed file on the server (not state, never a warning)."""
    stem, dot, ext = path.rpartition(".")
    if not dot or "." + ext not in DERIVED_SUFFIXES:
        return False
    return stem in managed_paths(layout).files or stem.startswith(layout.sieve_dir + "/")


def read_paths(layout: Layout) -> list[str]:
    """Everything mailstate owns on a server (directories are read whole), then one
    "=domain/login HOME" line per kept home, whose quota usage the read reports too. The
    read script adds every file of the last apply's manifest, wherever an older layout put it."""
    paths = managed_paths(layout)
    kept = [f"={k.domain}/{login} {k.home}" for login, k in sorted(layout.homes.items())]
    return [*paths.files, *paths.directories, f"{layout.state_dir}/manifest.json",
            f"{layout.state_dir}/state.json", *kept]


def through_current(layout: Layout, path: str) -> str:
    """A managed file's path through the live generation's ``current`` link (a directory
    link, switched by one rename): for a daemon that refuses a file that is itself a link
    (Pigeonhole takes a linked script for an "active script" link of its own storage)."""
    return f"{layout.state_dir}/live/current/files{path}"
