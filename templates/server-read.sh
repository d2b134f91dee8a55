#!/bin/sh
# mailstate: read everything it manages on this server, in one round trip.
#
# Input: standard input lists, one per line, the absolute paths to read (files or
# directories); then, optionally, a line `--expect` and what the client expects the managed
# files (all but the two records in the state directory) to hold, as `sha256sum` prints it
# with absolute paths. When they hold exactly that, the answer carries only the manifest and
# `facts/matched`, not the files. Output on standard output: a tar archive holding `files.tar` (those paths,
# relative to the root, Postfix's compiled .db/.lmdb maps and Sieve binaries excluded) and
# `facts/` (versions, the map type, Dovecot's protocols, `postconf -n`, generations kept, and the quota usage of
# each mailbox for the quota report). Lines "=domain/login HOME" name kept homes (layout.homes),
# whose usage is read from HOME rather than from the vmail directory.
#
# It also reports what an apply must finish first (an unfinished journal, the lock's holder)
# and whether postgrey runs the options of /etc/default/postgrey (argument 3). It never writes.
#
# MAILSTATE_ROOT (default: empty) prefixes every path: the local target uses a directory as
# the server's root. MAILSTATE_NO_COMMANDS=1 skips server programs (postconf, dovecot).
set -u
STATE_DIR="$1"
VMAIL_DIR="${2:-/var/vmail}"
POSTGREY_DEFAULT="${3:-/etc/default/postgrey}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mailstate-read.XXXXXX") || exit 3
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/facts"

awk -v expect="$tmp/expect" '$0 == "--expect" { e = 1; next } e { print > expect; next }
                             { print }' > "$tmp/asked"
# The paths asked for, plus every file the last apply recorded in its manifest (so that a
# file left behind by a changed layout is still seen, and can be removed).
{
    cat "$tmp/asked"
    if [ -f "$ROOT$STATE_DIR/manifest.json" ]; then
        grep -o '"/[^"]*": "[0-9a-f]\{64\}"' "$ROOT$STATE_DIR/manifest.json" | cut -d'"' -f2
    fi
} | while IFS= read -r path; do
    rel="${path#/}"
    case $path in  # "=domain/login HOME": a kept home, for the usage below
        =*) printf '%s\n' "${path#=}" >> "$tmp/kept"; continue ;;
    esac
    if [ -z "$rel" ]; then
        continue
    elif [ -d "$ROOT/$rel" ]; then  # files, and links to files (mailstate's are sorted below)
        (cd "$ROOT/" && find "$rel" \( -type f -o -xtype f \))
    elif [ -e "$ROOT/$rel" ]; then
        printf '%s\n' "$rel"
    fi
done | grep -v -e '\.db$' -e '\.lmdb$' -e '\.svbin$' -e '\.mailstate-new$' \
    | sort -u > "$tmp/paths"

# The managed paths are mailstate's links into the live generation (server-activate.sh): those
# are read through (tar -h); any other link is sent as a link, which the client counts as no
# file, and is never hashed below. One find per directory and one awk, not a readlink per file.
(cd "$ROOT/" && sed 's,/[^/]*$,,' "$tmp/paths" | sort -u | while IFS= read -r d; do
    find "$d/" -maxdepth 1 -type l -printf '%p\t%l\n' 2>/dev/null
done) > "$tmp/links"
touch "$tmp/ours" "$tmp/others"
awk -F'\t' -v sd="${STATE_DIR#/}" -v links="$tmp/links" -v ours="$tmp/ours" \
        -v others="$tmp/others" '
    FILENAME == links { link[$1] = $2; next }
    !($0 in link) { next }
    { n = split($0, part, "/"); up = ""; for (i = 2; i <= n; i++) up = up "../"
      if (link[$0] == up sd "/live/current/files/" $0) print > ours; else print > others }' \
    "$tmp/links" "$tmp/paths"
if [ "$NOCMD" != 1 ]; then
    # Each program takes about 10 ms to start: they run side by side, and beside the tar below.
    f="$tmp/facts"
    { dovecot --version > "$f/dovecot_version" 2>/dev/null || true; } &
    { postconf -h mail_version > "$f/postfix_version" 2>/dev/null || true; } &
    { postconf -h default_database_type > "$f/db_type" 2>/dev/null || true; } &
    # What Dovecot serves (2.3: "imap lmtp pop3"; 2.4: one "imap = yes" line each).
    { doveconf -h protocols > "$f/protocols" 2>/dev/null || true; } &
    { postconf -n > "$f/postconf" 2>/dev/null || true; } &
    { postconf -h myhostname > "$f/myhostname" 2>/dev/null || true; } &
    { doveconf -h ssl > "$f/ssl" 2>/dev/null || true; } &
elif [ -f "$ROOT/etc/postfix/main.cf" ]; then
    cp "$ROOT/etc/postfix/main.cf" "$tmp/facts/postconf"
fi
# Usage as Dovecot's quota counts it: the sum of the byte column of each maildirsize file
# (one small file per mailbox; walking the mail itself would be slow on a big server).
if [ -d "$ROOT$VMAIL_DIR" ]; then
    (cd "$ROOT$VMAIL_DIR" && set -- */*/Maildir/maildirsize && [ -f "$1" ] \
        && awk 'FNR == 1 { if (name != "") print bytes "\t" name; name = FILENAME; bytes = 0; next }
                { bytes += $1 }
                END { if (name != "") print bytes "\t" name }' "$@") > "$tmp/facts/usage" || true
fi
# Mailboxes whose home stays where another tool made it (layout.homes): the same sum from
# HOME/Maildir/maildirsize, named domain/login like the others; one awk for all of them.
if [ -f "$tmp/kept" ]; then
    awk -v root="$ROOT" '{ f = root $2 "/Maildir/maildirsize"; n = 0; bytes = 0
            while ((getline line < f) > 0) if (n++) { split(line, w, " "); bytes += w[1] }
            close(f); if (n) print bytes "\t" $1 "/Maildir/maildirsize" }' "$tmp/kept" \
        >> "$tmp/facts/usage" || true
fi
if [ -d "$ROOT$STATE_DIR/generations" ]; then
    for g in "$ROOT$STATE_DIR/generations"/*; do
        case "$g" in *.partial) continue ;; esac
        [ -e "$g" ] && say "${g##*/}"
    done > "$tmp/facts/generations"
fi
if [ -d "$ROOT$STATE_DIR/journal" ]; then
    kind=$(cat "$ROOT$STATE_DIR/journal/kind" 2>/dev/null)
    if [ -e "$ROOT$STATE_DIR/journal/committed" ]; then step=committed; else step=started; fi
    say "${kind:-apply} $step" > "$tmp/facts/journal"
fi
if [ -f "$ROOT$STATE_DIR/lock.holder" ]; then
    cp "$ROOT$STATE_DIR/lock.holder" "$tmp/facts/lock_holder"
fi
postgrey_diff "$POSTGREY_DEFAULT" > "$tmp/facts/postgrey" 2>/dev/null || true

records="${STATE_DIR#/}/manifest.json"
if [ -s "$tmp/expect" ]; then
    # Every name, size and byte as expected: the client has the files already.
    grep -v -x -e "$records" -e "${STATE_DIR#/}/state.json" "$tmp/paths" \
        | grep -v -x -F -f "$tmp/others" > "$tmp/hashed"
    (cd "$ROOT/" && tr '\n' '\0' < "$tmp/hashed" | xargs -0 -r sha256sum --) 2>/dev/null \
        | sed 's,  ,  /,' | LC_ALL=C sort > "$tmp/sums"
    if LC_ALL=C sort "$tmp/expect" | cmp -s - "$tmp/sums"; then
        : > "$tmp/facts/matched"
        grep -x -e "$records" "$tmp/paths" > "$tmp/paths.matched"
        mv "$tmp/paths.matched" "$tmp/paths"
    fi
fi
grep -v -x -F -f "$tmp/ours" "$tmp/paths" > "$tmp/plain"
grep -x -F -f "$tmp/paths" "$tmp/ours" > "$tmp/through"
(cd "$ROOT/" && tar -cf "$tmp/files.tar" --no-recursion -T "$tmp/plain" \
    && tar -rhf "$tmp/files.tar" --no-recursion -T "$tmp/through") || exit 4
wait
tar -cf - -C "$tmp" files.tar facts
