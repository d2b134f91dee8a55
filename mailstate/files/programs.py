"""A read-only SSH key: plans for untrusted pull requests without the keys to the kingdom.

A plan job on a pull request runs code and data the pull request can influence; with the
apply key it could do anything on every server. So apply installs on each server a fixed read
program (``<state_dir>/read-only``, a managed file like any other), and
``mailstate server-key --read-only`` prints the ``authorized_keys`` line that binds a key to
it: ``restrict,command="/bin/sh <state_dir>/read-only" <key>``. sshd then runs that program
whatever the client asks (no shell, no forwarding, no pty); the program answers only a
mailstate read, with the layout's own paths baked in (nothing from the client is used), and
refuses anything else. A plan made with that key works unchanged, because a plan is one such
read.
"""

from __future__ import annotations

import shlex
from importlib.resources import files

from mailstate.files.formats import lines
from mailstate.files.paths import read_paths
from mailstate.files.server_contract import with_table
from mailstate.model.layout import Layout

PROGRAM = "read-only"
# The second line of templates/server-read.sh: present in every read the client sends.
READ_MARK = "# mailstate: read everything it manages on this server"


def script(*names: str) -> str:
    """Server scripts (run one after the other) with ``server-lib.sh`` in front of them, then
    the table of exit codes and meta/ names when they use it (server_contract)."""
    base = files("mailstate.templates")
    names = with_table(names, [base.joinpath(n).read_text() for n in names])
    return "".join(base.joinpath(n).read_text() for n in ("server-lib.sh", *names))


def program_path(layout: Layout) -> str:
    return f"{layout.state_dir}/{PROGRAM}"


def read_program(layout: Layout) -> bytes:
    """The program the read-only key runs: the read script with this layout's arguments."""
    read = script("server-read.sh")
    assert READ_MARK in read, "server-read.sh lost the line the read-only program looks for"
    paths = "".join(p + "\n" for p in read_paths(layout))
    header = lines.header("the only command of the read-only SSH key; it changes nothing")
    return (
        f"{header}\n"
        "# sshd runs this for the key whatever the client asked for ($SSH_ORIGINAL_COMMAND is\n"
        "# only looked at, never run): a mailstate read is answered, anything else refused.\n"
        'case "${SSH_ORIGINAL_COMMAND:-}" in\n'
        f'    *"{READ_MARK}"*) ;;\n'
        '    *) echo "refused: this SSH key may only read (mailstate plan)" >&2; exit 1 ;;\n'
        "esac\n"
        f"sh -c {shlex.quote(read)} mailstate {shlex.quote(layout.state_dir)} "
        f"{shlex.quote(layout.vmail_dir)} <<'MAILSTATE_PATHS'\n"
        f"{paths}MAILSTATE_PATHS\n"
    ).encode()


def authorized_keys_line(layout: Layout, public_key: str) -> str:
    """The authorized_keys line restricting `public_key` to the read program."""
    parts = public_key.strip().split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")) or \
            any(ch in public_key.strip() for ch in "\n\r\"\\"):
        raise ValueError("not an OpenSSH public key line (like `ssh-ed25519 AAAA... comment`); "
                         "give the .pub file of the key")
    return f'restrict,command="/bin/sh {program_path(layout)}" {" ".join(parts)}'
