#!/bin/sh
# mailstate: check, swap in and reload a staged generation, in one round trip.
#
# Runs from the staging directory that `mailstate apply` uploaded. Everything it acts on is
# listed in files under meta/ (written by mailstate from validated data); this script itself
# is the same on every server and every apply.
#
#   1. lock (one apply at a time), compare-and-swap: the live files must still be what the
#      plan saw (meta/expect), else nothing is changed;
#   2. check the staged files with the server's own tools: postmap into the staging area,
#      doveconf -n with the staged Dovecot files, sievec on staged Sieve scripts;
#   3. keep the current files as a generation, swap each new file in with rename(2);
#   2b. the mail directory must belong to the mail user;
#   4. postconf -e, reload only the daemons whose files changed, probe them and open some
#      mailboxes as the mail user;
#      on any failure put the previous generation back, reload again, exit non-zero;
#   5. send welcome mails, drop old generations.
#
# With meta/rollback (holding a generation id) it instead puts that generation's files back,
# with the lists the generation kept of what its apply wrote, and reloads those daemons.
#
# MAILSTATE_ROOT prefixes every path (the local target); MAILSTATE_NO_COMMANDS=1 skips the
# server programs and says so.
set -u
umask 022  # new directories must be traversable by the mail user (Sieve scripts)
ROOT="${MAILSTATE_ROOT:-}"
NOCMD="${MAILSTATE_NO_COMMANDS:-0}"
STAGE=$(cd "$(dirname "$0")" && pwd)
trap 'rm -rf "$STAGE"' EXIT  # the stage holds copies of password hashes: never leave it
META="$STAGE/meta"
STATE_DIR=$(cat "$META/state_dir")
DBTYPE=$(cat "$META/db_type")
GENID=$(cat "$META/generation")
GEN="$ROOT$STATE_DIR/generations/$GENID"

say() { printf '%s\n' "$*"; }
step() { say "@step $1"; }  # progress for mailstate (not shown as output)
fail() { say "error: $1" >&2; exit "${2:-10}"; }  # $1 message, $2 exit code
skipped() { say "skipped on the local target: $*"; }

case "$DBTYPE" in
    hash|btree) DBEXT=db ;;
    lmdb) DBEXT=lmdb ;;
    cdb) DBEXT=cdb ;;
    *) fail "unsupported Postfix map type '$DBTYPE'" ;;
esac


# helpers --------------------------------------------------------------------------------
swap_file() {  # $1 staged source, $2 live target, $3 mode, $4 group
    mkdir -p "$(dirname "$2")" && cp "$1" "$2.mailstate-new" && chmod "$3" "$2.mailstate-new" \
        && { [ "$NOCMD" = 1 ] || chgrp "${4:-root}" "$2.mailstate-new"; } \
        && mv -f "$2.mailstate-new" "$2"
}
postconf_set() {  # key = value lines on stdin
    if [ "$NOCMD" = 1 ]; then
        mkdir -p "$ROOT/etc/postfix"
        touch "$ROOT/etc/postfix/main.cf"
        awk -F' = ' 'NR == FNR { want[$1] = $0; next }
            { split($0, kv, / *= */); if (kv[1] in want) { print want[kv[1]]; done[kv[1]] = 1 }
              else print }
            END { for (k in want) if (!(k in done)) print want[k] }' \
            - "$ROOT/etc/postfix/main.cf" > "$ROOT/etc/postfix/main.cf.mailstate-new" \
            && mv -f "$ROOT/etc/postfix/main.cf.mailstate-new" "$ROOT/etc/postfix/main.cf"
    else
        set --
        while IFS= read -r line; do set -- "$@" "$(printf '%s' "$line" | sed 's/ = /=/')"; done
        [ $# -eq 0 ] || postconf -e "$@"
    fi
}
restore() {
    say "restoring the files kept in generation $(basename "$GEN")" >&2
    while read -r mode group path; do
        if [ -f "$GEN/files$path" ]; then
            swap_file "$GEN/files$path" "$ROOT$path" "$mode" "$group"
        fi
    done < "$GEN/write"
    while read -r path; do
        [ -f "$GEN/files$path" ] && cp -p "$GEN/files$path" "$ROOT$path"
    done < "$GEN/remove"
    while read -r path; do rm -f "$ROOT$path" "$ROOT$path.$DBEXT"; done < "$GEN/created"
    if [ "$NOCMD" != 1 ]; then
        while read -r path; do
            [ -f "$ROOT$path" ] && postmap "$DBTYPE:$ROOT$path"
        done < "$GEN/postmap"
    fi
    if [ -f "$GEN/postconf" ]; then postconf_set < "$GEN/postconf"; fi
    if [ -s "$GEN/postconf_unset" ]; then xargs postconf -X < "$GEN/postconf_unset"; fi
    if [ -f "$GEN/main.cf" ]; then cp -p "$GEN/main.cf" "$ROOT/etc/postfix/main.cf"; fi
    reload_all || true
}
abort() { say "error: $1" >&2; restore; exit 20; }
wait_lmtp() {
    socket=$(cat "$GEN/lmtp_socket")
    i=0
    while [ ! -S "$socket" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -S "$socket" ]
}
reload_one() {
    cmd=$(cat "$GEN/cmd_$1")
    if [ "$NOCMD" = 1 ]; then skipped "reload $1 ($cmd)"; return 0; fi
    out=$(sh -c "$cmd" 2>&1) || { say "$1: '$cmd' failed: $out" >&2; return 1; }
    case "$1" in
        dovecot) wait_lmtp || { say "dovecot: LMTP socket missing after reload" >&2; return 1; }
                 doveadm service status > /dev/null 2>&1 \
                     || { say "dovecot does not answer after reload" >&2; return 1; } ;;
        postfix) postfix status > /dev/null 2>&1 \
                     || { say "postfix is not running after reload" >&2; return 1; } ;;
    esac
    say "reloaded $1"
}
reload_all() {
    rc=0
    while read -r service; do reload_one "$service" || rc=1; done < "$GEN/reload"
    return $rc
}
check_mail_dir() {  # the mail directory (and its domain directories) must be the mail user's
    [ "$NOCMD" = 1 ] && return 0  # the local target has no mail user
    read -r vuid vgid vdir < "$META/vmail"
    [ -e "$ROOT$vdir" ] || return 0  # made below, owned by the mail user
    [ -d "$ROOT$vdir" ] || fail "the mail directory $vdir is not a directory; nothing was changed"
    bad=$(find "$ROOT$vdir" -maxdepth 1 -type d \
        \( ! -uid "$vuid" -o ! -gid "$vgid" -o ! -perm -u=rwx \) -print -quit 2>&1)
    [ -z "$bad" ] && return 0
    owner=$(stat -c '%u:%g, mode %a' "$bad" 2>/dev/null)
    fail "$bad is owned by $owner: the mail user $vuid:$vgid must own it and may write to it, \
or Dovecot cannot create mailboxes there and every delivery is deferred. Fix it with \
'chown $vuid:$vgid $bad && chmod u+rwx $bad' (or set vmail_uid/vmail_gid in mailstate.yaml)"
}
probe_delivery() {  # after a reload: can Dovecot open the probed mailboxes as the mail user?
    [ -s "$META/probe" ] || return 0
    if [ "$NOCMD" = 1 ]; then skipped "mailbox probe (doveadm mailbox status)"; return 0; fi
    while read -r login; do
        # Opens (and on first use creates) the home, Maildir and INBOX with the user's own
        # settings and privileges, as a delivery would: a server that accepts mail it cannot
        # store fails here instead of deferring every message.
        out=$(doveadm mailbox status -u "$login" messages INBOX 2>&1) \
            || { say "mailbox $login cannot be opened by Dovecot: $out" >&2; return 1; }
    done < "$META/probe"
    say "probed $(wc -l < "$META/probe") mailbox(es)"
}

# 1. lock and compare-and-swap -----------------------------------------------------------
mkdir -p "$ROOT$STATE_DIR/generations" || fail "cannot create $STATE_DIR"
exec 9> "$ROOT$STATE_DIR/lock"
flock -n 9 || fail "another mailstate apply is running on this server (lock $STATE_DIR/lock)" 75

if [ -f "$META/rollback" ]; then
    GEN="$ROOT$STATE_DIR/generations/$(cat "$META/rollback")"
    [ -f "$GEN/write" ] || fail "no generation $(cat "$META/rollback") on this server" 11
    step restoring
    restore
    for record in manifest.json state.json; do
        if [ -f "$GEN/$record" ]; then
            cp -p "$GEN/$record" "$ROOT$STATE_DIR/$record"
        else
            rm -f "$ROOT$STATE_DIR/$record"
        fi
    done
    say "rolled back to the files before generation $(cat "$META/rollback")"
    rm -rf "$STAGE"
    exit 0
fi

while read -r expected path; do
    if [ "$expected" = absent ]; then
        [ -e "$ROOT$path" ] && fail "stale plan: $path appeared since the plan was made; plan again" 76
    else
        actual=$(sha256sum < "$ROOT$path" 2>/dev/null | cut -d' ' -f1)
        [ "$actual" = "$expected" ] || fail "stale plan: $path changed since the plan was made; plan again" 76
    fi
done < "$META/expect"

# 2. checks ------------------------------------------------------------------------------
step checking
if [ "$NOCMD" = 1 ]; then
    [ -s "$META/postmap" ] && skipped "postmap check"
    [ -s "$META/check_dovecot" ] && skipped "doveconf check"
    [ -s "$META/sieve" ] && skipped "sievec check"
else
    while read -r path; do
        out=$(postmap "$DBTYPE:$STAGE/files$path" 2>&1) || fail "postmap rejected $path: $out"
    done < "$META/postmap"
    if [ -s "$META/check_dovecot" ] || [ -s "$META/sieve" ]; then
        rm -rf "$STAGE/dovecot-check"
        cp -a /etc/dovecot "$STAGE/dovecot-check" || fail "cannot copy /etc/dovecot"
        fragment=$(cat "$META/dovecot_fragment")
        if [ -f "$STAGE/files$fragment" ]; then
            cp "$STAGE/files$fragment" "$STAGE/dovecot-check/conf.d/$(basename "$fragment")"
        fi
        out=$(doveconf -c "$STAGE/dovecot-check/dovecot.conf" -n 2>&1 >/dev/null) \
            || fail "doveconf rejected the new Dovecot configuration: $out"
        while read -r path; do
            out=$(sievec -c "$STAGE/dovecot-check/dovecot.conf" "$STAGE/files$path" \
                "$STAGE/check.svbin" 2>&1) || fail "sievec rejected $path: $out"
        done < "$META/sieve"
    fi
fi

check_mail_dir

# 3. keep the current generation, swap the new files in -----------------------------------
step swapping
mkdir -p "$GEN/files" || fail "cannot create generation $GENID"
: > "$GEN/created"
keep() {
    if [ -e "$ROOT$1" ]; then
        mkdir -p "$GEN/files$(dirname "$1")" && cp -p "$ROOT$1" "$GEN/files$1"
    else
        printf '%s\n' "$1" >> "$GEN/created"
    fi
}
while read -r mode group path; do keep "$path"; done < "$META/write"
while read -r path; do keep "$path"; done < "$META/remove"
for record in manifest.json state.json; do
    [ -f "$ROOT$STATE_DIR/$record" ] && cp -p "$ROOT$STATE_DIR/$record" "$GEN/$record"
done
if [ -s "$META/postconf" ]; then
    if [ "$NOCMD" = 1 ]; then
        [ -f "$ROOT/etc/postfix/main.cf" ] && cp -p "$ROOT/etc/postfix/main.cf" "$GEN/main.cf"
    else
        # Keys not set in main.cf are recorded as such: restoring their default value with
        # postconf -e would pin it in main.cf; postconf -X removes them again.
        while IFS=' =' read -r key _; do
            if [ -n "$(postconf -n "$key")" ]; then
                printf '%s = %s\n' "$key" "$(postconf -h "$key")"
            else
                printf '%s\n' "$key" >> "$GEN/postconf_unset"
            fi
        done < "$META/postconf" > "$GEN/postconf"
    fi
fi
for list in write remove postmap reload cmd_postfix cmd_dovecot cmd_postgrey lmtp_socket; do
    cp "$META/$list" "$GEN/$list"
done


while read -r mode group path; do
    swap_file "$STAGE/files$path" "$ROOT$path" "$mode" "$group" || abort "cannot write $path"
done < "$META/write"
while read -r path; do
    if [ -f "$STAGE/files$path.$DBEXT" ]; then
        swap_file "$STAGE/files$path.$DBEXT" "$ROOT$path.$DBEXT" 0644 || abort "cannot write $path.$DBEXT"
    fi
done < "$META/postmap"
while read -r path; do
    rm -f "$ROOT$path" "$ROOT$path.$DBEXT" || abort "cannot remove $path"
done < "$META/remove"
if [ -s "$META/postconf" ]; then
    postconf_set < "$META/postconf" || abort "postconf -e failed"
fi
read -r vuid vgid vdir < "$META/vmail"
if [ ! -d "$ROOT$vdir" ]; then
    mkdir -p "$ROOT$vdir" || abort "cannot create $vdir"
    [ "$NOCMD" = 1 ] || chown "$vuid:$vgid" "$ROOT$vdir"
fi

# 4. reload what changed, probe --------------------------------------------------------
step reloading
reload_all || abort "a daemon did not come back after reload"
probe_delivery || abort "Dovecot cannot store mail in a mailbox after the reload"

# 5. done: manifest and state, welcome mails, retention --------------------------------
for record in state.json manifest.json; do
    cp "$META/$record" "$ROOT$STATE_DIR/$record.mailstate-new" \
        && mv -f "$ROOT$STATE_DIR/$record.mailstate-new" "$ROOT$STATE_DIR/$record"
done
for mail in "$STAGE"/welcome/*.eml; do
    [ -f "$mail" ] || continue
    if [ "$NOCMD" = 1 ]; then
        mkdir -p "$ROOT$STATE_DIR/outbox" && cp "$mail" "$ROOT$STATE_DIR/outbox/"
        skipped "sendmail of $(basename "$mail") (kept in $STATE_DIR/outbox)"
    else
        sender=$(cat "${mail%.eml}.from")
        recipient=$(cat "${mail%.eml}.to")  # the envelope names it; headers are never read
        /usr/sbin/sendmail -i -f "$sender" -- "$recipient" < "$mail" \
            || say "warning: welcome mail $(basename "$mail") not sent" >&2
        say "sent welcome mail $(basename "$mail" .eml)"
    fi
done
while read -r old; do
    rm -rf "${ROOT}${STATE_DIR}/generations/$old"
done < "$META/prune"
rm -rf "$STAGE"  # holds copies of password hashes; the generation keeps what is needed
say "generation $GENID active"
exit 0
