#!/bin/sh
# mailstate: read everything it manages on this server, in one round trip.
#
# Input: standard input lists, one per line, the absolute paths to read (files or
# directories). Output on standard output: a tar archive holding `files.tar` (those paths,
# relative to the root, Postfix's compiled .db/.lmdb maps and Sieve binaries excluded) and
# `facts/` (versions, the map type, `postconf -n`, generations kept).
#
# MAILSTATE_ROOT (default: empty) prefixes every path: the local target uses a directory as
# the server's root. MAILSTATE_NO_COMMANDS=1 skips server programs (postconf, dovecot).
set -u
ROOT="${MAILSTATE_ROOT:-}"
NOCMD="${MAILSTATE_NO_COMMANDS:-0}"
STATE_DIR="$1"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mailstate-read.XXXXXX") || exit 3
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/facts"

: > "$tmp/paths"
while IFS= read -r path; do
    rel="${path#/}"
    if [ -e "$ROOT/$rel" ]; then
        printf '%s\n' "$rel" >> "$tmp/paths"
    fi
done

if [ "$NOCMD" != 1 ]; then
    dovecot --version > "$tmp/facts/dovecot_version" 2>/dev/null || true
    postconf -h mail_version > "$tmp/facts/postfix_version" 2>/dev/null || true
    postconf -h default_database_type > "$tmp/facts/db_type" 2>/dev/null || true
    postconf -n > "$tmp/facts/postconf" 2>/dev/null || true
elif [ -f "$ROOT/etc/postfix/main.cf" ]; then
    cp "$ROOT/etc/postfix/main.cf" "$tmp/facts/postconf"
fi
if [ -d "$ROOT$STATE_DIR/generations" ]; then
    ls -1 "$ROOT$STATE_DIR/generations" > "$tmp/facts/generations"
fi

(cd "$ROOT/" && tar -cf "$tmp/files.tar" --exclude='*.db' --exclude='*.lmdb' \
    --exclude='*.svbin' --exclude='*.mailstate-new' -T "$tmp/paths") || exit 4
tar -cf - -C "$tmp" files.tar facts
