#!/bin/sh
# mailstate: read what Virtualmin keeps about mail on this server, in one round trip.
#
# Output on standard output: a tar archive holding `files.tar` (Virtualmin's domain and plan
# records, /etc/postfix/virtual, /etc/aliases, the passwd, shadow and group files, postgrey's
# recipient whitelists and options, every autoreply file /etc/aliases names, and any
# .procmailrc or .forward in a mail user's home) and `facts/` (`postconf -n`, `repquota`,
# which homes hold a Maildir). Nothing is written on the server.
#
# MAILSTATE_ROOT (default: empty) prefixes every path: the local target uses a directory as
# the server's root. MAILSTATE_NO_COMMANDS=1 skips server programs (postconf, repquota).
set -u
ROOT="${MAILSTATE_ROOT:-}"
NOCMD="${MAILSTATE_NO_COMMANDS:-0}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mailstate-vmread.XXXXXX") || exit 3
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/facts"
cd "$ROOT/" || exit 3

# Homes of users that can own mail (uid 1000 and up), one per line, relative to the root.
awk -F: '$3 >= 1000 && $6 ~ /^\// { print substr($6, 2) }' etc/passwd 2>/dev/null \
    | sort -u > "$tmp/homes"
{
    for f in etc/webmin/virtual-server/domains/* etc/webmin/virtual-server/plans/* \
             etc/postfix/virtual etc/aliases etc/passwd etc/shadow etc/group \
             etc/postgrey/whitelist_recipients etc/postgrey/whitelist_recipients.local \
             etc/postgrey/whitelist_clients.local \
             etc/default/postgrey etc/postfix/main.cf; do
        [ -f "$f" ] && printf '%s\n' "$f"
    done
    if [ -f etc/aliases ]; then
        grep -o 'virtual-server/autoreply\.pl[[:space:]]*[^[:space:]",]*' etc/aliases \
            | awk '{ print $2 }' | while IFS= read -r p; do
                p="${p#/}"
                [ -n "$p" ] && [ -f "$p" ] && printf '%s\n' "$p"
            done
    fi
    while IFS= read -r h; do
        for f in "$h/.procmailrc" "$h/.forward"; do [ -f "$f" ] && printf '%s\n' "$f"; done
    done < "$tmp/homes"
} | sort -u > "$tmp/paths"
while IFS= read -r h; do
    [ -d "$h/Maildir" ] && printf '/%s\n' "$h"
done < "$tmp/homes" > "$tmp/facts/maildirs"

if [ "$NOCMD" != 1 ]; then
    postconf -n > "$tmp/facts/postconf" 2>/dev/null || true
    repquota -a -u -n -p > "$tmp/facts/repquota" 2>/dev/null || true
fi

tar -cf "$tmp/files.tar" --no-recursion -T "$tmp/paths" || exit 4
tar -cf - -C "$tmp" files.tar facts
