#!/bin/sh
# mailstate: check, swap in and reload a staged generation; finishes whole or not at all.
#
# Started by server-push.sh in a session of its own, so that it finishes whatever happens to
# the SSH connection; its output and exit status go to STATE_DIR/runs/RUN/. Everything it acts
# on is listed in files under meta/ (written by mailstate from validated data); this script
# itself is the same on every server and every apply. Steps (the names are those of the
# test-only fault hook, see server-lib.sh):
#
#   lock        one apply at a time (flock, waits up to meta/lock_timeout seconds); the holder
#               is recorded in STATE_DIR/lock.holder; stages and partial generations left by
#               killed runs are removed; an unfinished journal is completed or undone first;
#   (compare)   the live files, the manifest, the recorded state and the main.cf settings must
#               still be what the plan saw (meta/expect, meta/expect_postconf);
#   (safe)      no managed path or parent directory is a symbolic link, owned by another user,
#               or writable by group or others;
#   checked     postmap into the stage, doveconf -n with the staged Dovecot files, sievec;
#               the mail directory must belong to the mail user;
#   kept        the current files are copied (every copy checked) to generations/GEN.partial;
#   journal     STATE_DIR/journal records what this run is about to do (the generation, the
#               daemons to reload, the welcome mails); from here on a killed run is completed
#               or undone by the next one;
#   prepared    every new file is copied next to its target as PATH.mailstate-new (checked);
#   rename:PATH each new file renamed into place; remove:PATH each file removed;
#   postconf    main.cf settings; reload:SERVICE each reload (postgrey is then checked to run
#               the options of /etc/default/postgrey); then some mailboxes are opened as the
#               mail user (probe);
#   manifest    state.json and manifest.json written;
#   committed   the journal's commit mark: from here on the run is completed, never undone;
#   welcome:LOGIN each welcome mail, sent once (marked in the journal);
#   done        old generations pruned, the journal removed.
#
# A failure before `journal` changes nothing. A failure after it puts the kept files back,
# reloads, and exits EXIT_RESTORED (or EXIT_NOT_RESTORED when even that failed: the journal
# stays for the next run). The exit codes and the meta/ names are in server-contract.sh.
# meta/mode "rollback" puts a kept generation back the same way; "recover" only completes or
# undoes an unfinished journal.
set -u
umask 022  # new directories must be traversable by the mail user (Sieve scripts)
STAGE=$(cd "$(dirname "$0")" && pwd)
META="$STAGE/meta"
RUNID="$1"
STATE_DIR=$(cat "$META/$META_STATE_DIR")
SD="$ROOT$STATE_DIR"
RUN="$SD/runs/$RUNID"
J="$SD/journal"
MODE=$(cat "$META/$META_MODE")
: > "$RUN/pid.$$"  # empty files (names only) need no free space
echo $$ > "$STAGE/.pid"
LOCKED=0
# shellcheck disable=SC2317  # reached through the EXIT trap
finish() {
    rc=$?
    rm -rf "$STAGE"  # holds copies of password hashes: never leave it
    [ "$LOCKED" = 1 ] && rm -f "$SD/lock.holder"
    # an empty file needs no free space: the outcome is recorded even on a full disk
    : > "$RUN/exit.$rc"
}
trap finish EXIT
trap '' HUP PIPE
trap 'exit "$EXIT_STOPPED"' TERM INT

fail() { say "error: $1" >&2; exit "${2:-$EXIT_CHECK_FAILED}"; }  # $1 message, $2 exit code
skipped() { say "skipped on the local target: $*"; }
step() { say "@step $1"; }  # progress for mailstate (not shown as output)
# The benchmark's clock (MAILSTATE_TIMES=1, bench/steps.py): "mailstate-time STEP MS" on stderr,
# the milliseconds since the previous tick. Not in server-lib.sh: the read-only program embeds
# that, and a change there would rewrite it on every server. Off, it costs no process.
TIMES="${MAILSTATE_TIMES:-0}"
[ "$TIMES" != 1 ] || _t=$(date +%s%N)
tick() {
    [ "$TIMES" = 1 ] || return 0
    _n=$(date +%s%N)
    say "mailstate-time $1 $(( (_n - _t) / 1000000 ))" >&2
    _t=$_n
}

DBTYPE=$(cat "$META/$META_DB_TYPE")
case "$DBTYPE" in
    hash|btree) DBEXT=db ;;
    lmdb) DBEXT=lmdb ;;
    cdb) DBEXT=cdb ;;
    *) fail "unsupported Postfix map type '$DBTYPE'" ;;
esac

# helpers --------------------------------------------------------------------------------
put() {  # $1 source, $2 live target, $3 mode, $4 group: $2.mailstate-new ready to rename
    # One process per file (it was five): install unlinks what is there (a planted symlink
    # included), creates the copy unreadable (umask 077), then gives it its group and mode,
    # so a passwd-file is never world-readable.
    [ -d "${2%/*}" ] || mkdir -p "${2%/*}" || return 1
    umask 077
    if [ "$NOCMD" = 1 ]; then install -m "$3" "$1" "$2.mailstate-new"
    else install -m "$3" -g "${4:-root}" "$1" "$2.mailstate-new"; fi
    _rc=$?
    umask 022
    return $_rc
}
swap() {  # $1 source, $2 live target, $3 mode, $4 group
    put "$@" && mv -f "$2.mailstate-new" "$2"
}
unprepare() {  # remove the PATH.mailstate-new of every file listed in $1/write
    while read -r _ _ path; do
        rm -f "$ROOT$path.mailstate-new" "$ROOT$path.$DBEXT.mailstate-new"
    done < "$1/$META_WRITE"
    rm -f "$ROOT/etc/postfix/main.cf.mailstate-new" "$SD/state.json.mailstate-new" \
        "$SD/manifest.json.mailstate-new"
}
maincf_set() {  # key = value lines on stdin -> main.cf.mailstate-new (local target)
    mkdir -p "$ROOT/etc/postfix" && touch "$ROOT/etc/postfix/main.cf" && awk -F' = ' '
        NR == FNR { want[$1] = $0; next }
        { split($0, kv, / *= */); if (kv[1] in want) { print want[kv[1]]; done[kv[1]] = 1 }
          else print }
        END { for (k in want) if (!(k in done)) print want[k] }' \
        - "$ROOT/etc/postfix/main.cf" > "$ROOT/etc/postfix/main.cf.mailstate-new"
}
postconf_set() {  # key = value lines on stdin
    if [ "$NOCMD" = 1 ]; then
        maincf_set && mv -f "$ROOT/etc/postfix/main.cf.mailstate-new" "$ROOT/etc/postfix/main.cf"
    else
        set --
        while IFS= read -r line; do set -- "$@" "$(printf '%s' "$line" | sed 's/ = /=/')"; done
        [ $# -eq 0 ] || postconf -e "$@" || return 1
        # Every Postfix program rereads a main.cf younger than about 2 s until it is older
        # ("hot" file: it could be half written), so the reload right after would wait ~2.3 s.
        # postconf -e has renamed the finished file into place: date it 3 s back.
        [ $# -eq 0 ] || touch -d "@$(( $(date +%s) - 3 ))" /etc/postfix/main.cf || true
    fi
}
postconf_get() {  # the value of a main.cf setting, or "absent"
    if [ "$NOCMD" = 1 ]; then
        [ -f "$ROOT/etc/postfix/main.cf" ] || { say absent; return; }
        awk -v k="$1" '{ split($0, kv, / *= */) } kv[1] == k { sub(/^[^=]*= */, ""); v = $0; f = 1 }
            END { if (f) print v; else print "absent" }' "$ROOT/etc/postfix/main.cf"
    else
        v=$(postconf -n "$1" 2>/dev/null)
        if [ -z "$v" ]; then say absent; else say "${v#*= }"; fi
    fi
}
wait_lmtp() {
    socket=$(cat "$G/$META_LMTP_SOCKET")
    i=0
    while [ ! -S "$socket" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -S "$socket" ]
}
reload_one() {  # $1 service; commands come from the generation G
    cmd=$(cat "$G/$META_CMD$1")
    if [ "$NOCMD" = 1 ]; then skipped "reload $1 ($cmd)"; return 0; fi
    out=$(sh -c "$cmd" 9>&- < /dev/null 2>&1) || { say "$1: '$cmd' failed: $out" >&2; return 1; }
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
    while read -r service; do reload_one "$service" || rc=1; done < "$G/$META_RELOAD"
    return $rc
}
put_record() {  # $1 source, $2 name in the state directory
    cp "$1" "$SD/$2.mailstate-new" && mv -f "$SD/$2.mailstate-new" "$SD/$2"
}
restore() {  # put back the files kept in generation G; 1 when a file could not be put back
    say "restoring the files kept in generation $(basename "$G" .partial)" >&2
    rok=0
    while read -r mode group path; do
        if [ -f "$G/files$path" ]; then
            swap "$G/files$path" "$ROOT$path" "$mode" "$group" || rok=1
        fi
    done < "$G/$META_WRITE"
    while read -r path; do
        if [ -f "$G/files$path" ]; then swap "$G/files$path" "$ROOT$path" 0644 root || rok=1; fi
    done < "$G/$META_REMOVE"
    while read -r path; do rm -f "$ROOT$path" "$ROOT$path.$DBEXT" || rok=1; done < "$G/created"
    if [ "$NOCMD" != 1 ]; then
        while read -r path; do
            if [ -f "$ROOT$path" ]; then postmap "$DBTYPE:$ROOT$path" || rok=1; fi
        done < "$G/$META_POSTMAP"
    fi
    if [ -f "$G/postconf" ]; then postconf_set < "$G/postconf" || rok=1; fi
    if [ -s "$G/postconf_unset" ]; then xargs postconf -X < "$G/postconf_unset" || rok=1; fi
    if [ -f "$G/main.cf" ]; then swap "$G/main.cf" "$ROOT/etc/postfix/main.cf" 0644 root || rok=1; fi
    for record in manifest.json state.json; do
        if [ -f "$G/$record" ]; then put_record "$G/$record" "$record" || rok=1
        else rm -f "$SD/$record"; fi
    done
    [ $rok = 0 ] && unprepare "$G"
    reload_all || say "warning: a daemon did not come back after the files were put back" >&2
    return $rok
}
send_welcome() {  # $1 its name (welcome/NAME.eml), $2 the envelope sender, $3 the recipient
    # No process but sendmail itself (10,000 mails cost minutes with a cat and a basename each).
    if [ "$NOCMD" = 1 ]; then  # the copy is in the outbox already (welcome_all): log it
        say "$1" >> "$SD/outbox/sent.log"
        skipped "sendmail of $1.eml (kept in $STATE_DIR/outbox)"
    else  # the envelope names the recipient, never a header (no sendmail -t)
        /usr/sbin/sendmail -i -f "$2" -- "$3" < "$J/welcome/$1.eml" \
            || say "warning: welcome mail $1.eml not sent" >&2
        say "sent welcome mail $1"
    fi
}
welcome_one() {  # $1 name, $2 sender, $3 recipient: sent once, marked before and after sending
    [ -e "$J/sent.$1" ] && return 0
    if [ -e "$J/sending.$1" ]; then  # killed while sending: never twice
        say "warning: the welcome mail to $1 may not have been sent (a run was killed \
while sending it); it is not sent again" >&2
        return 0
    fi
    : > "$J/sending.$1"
    send_welcome "$@"
    : > "$J/sent.$1"
    fault "welcome:$1"
}
welcome_all() {  # every welcome mail of the journal, in the order of welcome/envelopes
    if [ "$NOCMD" = 1 ] && [ -n "$(ls "$J/welcome" 2>/dev/null)" ]; then
        # the local target's "sending" is the line in sent.log: the copies go in one process
        { mkdir -p "$SD/outbox" && cp -- "$J"/welcome/*.eml "$SD/outbox/"; } \
            || say "warning: the welcome mails could not be copied to $STATE_DIR/outbox" >&2
    fi
    if [ -f "$J/welcome/envelopes" ]; then  # NAME<tab>SENDER<tab>RECIPIENT lines
        while IFS='	' read -r name sender recipient; do
            [ -f "$J/welcome/$name.eml" ] && welcome_one "$name" "$sender" "$recipient"
        done < "$J/welcome/envelopes"
        return 0
    fi
    # a journal left by an older mailstate: the envelope in NAME.from and NAME.to files
    for mail in "$J"/welcome/*.eml; do
        [ -f "$mail" ] || continue
        name="${mail##*/}"
        name="${name%.eml}"
        sender="" recipient=""  # the files end without a newline: read still sets the value
        IFS= read -r sender < "${mail%.eml}.from" || :
        IFS= read -r recipient < "${mail%.eml}.to" || :
        welcome_one "$name" "$sender" "$recipient"
    done
}
finalize() {  # after the commit mark: the generation keeps its final name (or goes if empty)
    gen=$(cat "$J/generation")
    if [ -d "$SD/generations/$gen" ]; then
        if [ -s "$SD/generations/$gen/kept" ] || [ -s "$SD/generations/$gen/created" ]; then
            mv "$SD/generations/$gen" "$SD/generations/${gen%.partial}"
        else
            rm -rf "$SD/generations/$gen"
        fi
    fi
}
recover() {  # complete (after the commit mark) or undo (before it) an unfinished journal
    [ -d "$J" ] || return 0
    kind=$(cat "$J/kind")
    gen=$(cat "$J/generation")
    G="$SD/generations/$gen"
    [ -d "$G" ] || G="$SD/generations/${gen%.partial}"
    if [ -e "$J/committed" ]; then
        finalize
        welcome_all
        rm -rf "$J"
        say "completed an unfinished $kind (it had passed its commit mark)"
    elif [ "$kind" = rollback ]; then
        restore || fail "the unfinished rollback could not be completed; run again" \
            "$EXIT_NOT_RESTORED"
        rm -rf "$J"
        say "completed the unfinished rollback to generation $gen"
    else
        restore || fail "the files of an unfinished apply could not all be put back; run again" \
            "$EXIT_NOT_RESTORED"
        rm -rf "$G" "$J"
        say "undid an unfinished apply: the files before it were put back and reloaded"
    fi
}

check_mail_dir() {  # the mail directory (and its domain directories) must be the mail user's
    [ "$NOCMD" = 1 ] && return 0  # the local target has no mail user
    read -r vuid vgid vdir < "$META/$META_VMAIL"
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
    [ -s "$META/$META_PROBE" ] || return 0
    if [ "$NOCMD" = 1 ]; then skipped "mailbox probe (doveadm mailbox status)"; return 0; fi
    # Each doveadm opens (and on first use creates) the home, Maildir and INBOX with the
    # user's own settings and privileges, as a delivery would: a server that accepts mail it
    # cannot store fails here instead of deferring every message. They run at once (each is
    # mostly its start-up, ~60 ms); the first failure in the list's order is reported.
    rm -rf "$STAGE/probe" && mkdir "$STAGE/probe" || return 1
    i=0
    while read -r login; do
        i=$((i + 1))
        { doveadm mailbox status -u "$login" messages INBOX > "$STAGE/probe/$i" 2>&1 \
            || say "$login" > "$STAGE/probe/$i.failed"; } < /dev/null &
    done < "$META/$META_PROBE"
    wait
    n=0
    while [ $n -lt $i ]; do
        n=$((n + 1))
        [ -f "$STAGE/probe/$n.failed" ] || continue
        read -r login < "$STAGE/probe/$n.failed"
        say "mailbox $login cannot be opened by Dovecot: $(cat "$STAGE/probe/$n")" >&2
        return 1
    done
    say "probed $i mailbox(es)"
}

# lock -----------------------------------------------------------------------------------
why=$(unsafe_dir "$STATE_DIR") || why=$(printf '%s\n' "$STATE_DIR/lock" \
    "$STATE_DIR/lock.holder" "$STATE_DIR/manifest.json" "$STATE_DIR/state.json" | unsafe_paths)
[ -z "$why" ] || fail "refusing to use $STATE_DIR: $why; nothing was changed" "$EXIT_UNSAFE_PATH"
for d in generations journal; do
    [ -L "$SD/$d" ] && fail "refusing to use $STATE_DIR: $STATE_DIR/$d is a symbolic link" \
        "$EXIT_UNSAFE_PATH"
done
mkdir -p "$SD/generations" || fail "cannot create $STATE_DIR/generations" "$EXIT_NOT_STORED"
exec 9>> "$SD/lock"
if ! flock -w "$(cat "$META/$META_LOCK_TIMEOUT")" 9; then
    fail "another mailstate apply is running on this server (lock $STATE_DIR/lock, held by \
$(cat "$SD/lock.holder" 2>/dev/null || echo 'an unknown process'))" "$EXIT_LOCKED"
fi
LOCKED=1
printf 'pid %s, run %s, started %s, by %s\n' $$ "$RUNID" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$(cat "$META/$META_HOLDER")" > "$SD/lock.holder"
for old in "$SD"/stage.*; do
    { [ -d "$old" ] && [ "$old" != "$STAGE" ]; } || continue
    alive "$(cat "$old/.pid" 2>/dev/null)" && continue
    rm -rf "$old" && say "removed the stage of an interrupted apply ($(basename "$old"))"
done
for old in "$SD"/generations/*.partial; do
    [ -d "$old" ] || continue
    [ -f "$J/generation" ] && [ "$(cat "$J/generation")" = "$(basename "$old")" ] && continue
    rm -rf "$old"
done
rm -rf "$SD/journal.new"
tick lock
recover
tick recover

if [ "$MODE" = recover ]; then
    # a run killed after its journal was removed had finished: say so when it is the one asked
    if [ -s "$META/$META_GENERATION" ] \
            && grep -q "\"generation\": \"$(cat "$META/$META_GENERATION")\"" \
            "$SD/manifest.json" 2>/dev/null; then
        say "completed an unfinished apply: generation $(cat "$META/$META_GENERATION") is active"
    fi
    exit 0
fi

# rollback -------------------------------------------------------------------------------
if [ "$MODE" = rollback ]; then
    target=$(cat "$META/$META_ROLLBACK")
    G="$SD/generations/$target"
    [ -f "$G/$META_WRITE" ] || fail "no generation $target on this server" "$EXIT_NO_GENERATION"
    { mkdir "$SD/journal.new" && say rollback > "$SD/journal.new/kind" \
        && say "$target" > "$SD/journal.new/generation" && mv "$SD/journal.new" "$J"; } \
        || fail "cannot write the journal in $STATE_DIR; nothing was changed" "$EXIT_NOT_STORED"
    fault journal
    step restoring
    restore || fail "the files of generation $target could not all be put back; the journal \
is kept: run rollback again" "$EXIT_NOT_RESTORED"
    rm -rf "$J"
    say "rolled back to the files before generation $target"
    exit 0
fi

# safe paths -----------------------------------------------------------------------------
read -r vuid vgid vdir < "$META/$META_VMAIL"
why=$({ cut -d' ' -f3- "$META/$META_WRITE"; cat "$META/$META_REMOVE"
        sed 's/$/.'"$DBEXT"'/' "$META/$META_POSTMAP"
        [ -s "$META/$META_POSTCONF" ] && say /etc/postfix/main.cf; } | unsafe_paths)
if [ -z "$why" ] && vwhy=$(unsafe_dir "$(dirname "$vdir")"); then
    # Root makes the mail directory and hands it to the mail user; in a parent another may
    # write (Debian's /var/mail: root:mail 2775, for dotlocks, and no sticky bit), a member
    # of that group could rename it, or put a link in its place first.
    vparent=$(dirname "$vdir")
    why="$vwhy: the mail directory $vdir would be made and owned inside a directory that \
others may change (anyone in its group could swap $vdir for a link). Keep the mail in a \
directory only root can change, e.g. layout: {vmail_dir: /var/vmail} in mailstate.yaml \
(mailstate makes it); or, if nothing delivers into $vparent itself, take the group's right \
away with 'chmod g-w,o-w $vparent'"
fi
[ -n "$why" ] || ! [ -L "$ROOT$vdir" ] || why="$vdir is a symbolic link"
[ -z "$why" ] || fail "refusing to write: $why; nothing was changed" "$EXIT_UNSAFE_PATH"
tick safe

# compare-and-swap -----------------------------------------------------------------------
while read -r expected path; do
    if [ "$expected" = absent ]; then
        [ -e "$ROOT$path" ] \
            && fail "stale plan: $path appeared since the plan was made; plan again" "$EXIT_STALE"
    else
        actual=$(sha256sum < "$ROOT$path" 2>/dev/null | cut -d' ' -f1)
        [ "$actual" = "$expected" ] \
            || fail "stale plan: $path changed since the plan was made; plan again" "$EXIT_STALE"
    fi
done < "$META/$META_EXPECT"
while IFS='	' read -r key expected; do
    [ "$(postconf_get "$key")" = "$expected" ] \
        || fail "stale plan: the main.cf setting $key changed since the plan was made; plan \
again" "$EXIT_STALE"
done < "$META/$META_EXPECT_POSTCONF"
tick compare

# checked --------------------------------------------------------------------------------
step checking
if [ "$NOCMD" = 1 ]; then
    [ -s "$META/$META_POSTMAP" ] && skipped "postmap check"
    [ -s "$META/$META_CHECK_DOVECOT" ] && skipped "doveconf check"
    [ -s "$META/$META_SIEVE" ] && skipped "sievec check"
else
    while read -r path; do
        out=$(postmap "$DBTYPE:$STAGE/files$path" 2>&1) || fail "postmap rejected $path: $out"
    done < "$META/$META_POSTMAP"
    tick check:postmap
    if [ -s "$META/$META_CHECK_DOVECOT" ] || [ -s "$META/$META_SIEVE" ]; then
        rm -rf "$STAGE/dovecot-check"
        cp -a /etc/dovecot "$STAGE/dovecot-check" || fail "cannot copy /etc/dovecot"
        fragment=$(cat "$META/$META_DOVECOT_FRAGMENT")
        if [ -f "$STAGE/files$fragment" ]; then
            cp "$STAGE/files$fragment" "$STAGE/dovecot-check/conf.d/$(basename "$fragment")" \
                || fail "cannot copy $fragment for the check"
        fi
        out=$(doveconf -c "$STAGE/dovecot-check/dovecot.conf" -n 2>&1 >/dev/null) \
            || fail "doveconf rejected the new Dovecot configuration: $out"
        tick check:doveconf
        # One sievec per directory (it compiles every .sieve file in it, and names the one
        # it rejects): one process per script cost ~30 ms each, 17 s for 500 vacations.
        # shellcheck disable=SC2013  # validated paths (no blanks); a `while read` in a pipe
        # would run `fail` in a subshell, which would not stop this script
        for dir in $(sed 's|/[^/]*$||' "$META/$META_SIEVE" | sort -u); do
            out=$(sievec -c "$STAGE/dovecot-check/dovecot.conf" "$STAGE/files$dir" 2>&1) \
                || fail "sievec rejected a script in $dir: $out"
        done
        tick check:sievec
    fi
fi
check_mail_dir
tick check:mail_dir
fault checked

# kept: the current files as generations/GEN.partial, every copy checked -------------------
GENID=$(cat "$META/$META_GENERATION")
G="$SD/generations/$GENID.partial"
unkept() {
    rm -rf "$G"
    fail "cannot keep the current files as a generation ($1); nothing was changed" "$EXIT_NOT_KEPT"
}
{ mkdir -p "$G/files" && chmod 700 "$SD/generations"; } || unkept "cannot create $STATE_DIR/generations/$GENID"
{ : > "$G/created" && : > "$G/kept"; } || unkept "cannot write in $STATE_DIR/generations"
keep() {
    if [ -e "$ROOT$1" ]; then
        mkdir -p "$G/files$(dirname "$1")" && cp -p "$ROOT$1" "$G/files$1" \
            && say "$1" >> "$G/kept"
    else
        say "$1" >> "$G/created"
    fi
}
while read -r _ _ path; do keep "$path" || unkept "copy of $path"; done < "$META/$META_WRITE"
while read -r path; do keep "$path" || unkept "copy of $path"; done < "$META/$META_REMOVE"
for record in manifest.json state.json; do
    if [ -f "$SD/$record" ]; then cp -p "$SD/$record" "$G/$record" || unkept "copy of $record"; fi
done
if [ -s "$META/$META_POSTCONF" ]; then
    say main.cf >> "$G/kept" || unkept "main.cf"
    if [ "$NOCMD" = 1 ]; then
        if [ -f "$ROOT/etc/postfix/main.cf" ]; then
            cp -p "$ROOT/etc/postfix/main.cf" "$G/main.cf" || unkept "copy of main.cf"
        fi
    else
        # Keys not set in main.cf are recorded as such: restoring their default value with
        # postconf -e would pin it in main.cf; postconf -X removes them again.
        : > "$G/postconf_unset" || unkept "postconf"
        while IFS=' =' read -r key _; do
            if [ -n "$(postconf -n "$key")" ]; then
                printf '%s = %s\n' "$key" "$(postconf -h "$key")" || exit 1
            else
                printf '%s\n' "$key" >> "$G/postconf_unset" || exit 1
            fi
        done < "$META/$META_POSTCONF" > "$G/postconf" || unkept "the main.cf settings"
    fi
fi
for list in "$META_WRITE" "$META_REMOVE" "$META_POSTMAP" "$META_RELOAD" "${META_CMD}postfix" \
        "${META_CMD}dovecot" "${META_CMD}postgrey" "$META_LMTP_SOCKET"; do
    cp "$META/$list" "$G/$list" || unkept "copy of the list $list"
done
say "$RUNID" > "$G/run" || unkept "run"
tick kept
fault kept

# journal --------------------------------------------------------------------------------
unjournal() {
    rm -rf "$SD/journal.new" "$G"
    fail "cannot write the journal ($1); nothing was changed" "$EXIT_NOT_STORED"
}
mkdir "$SD/journal.new" || unjournal "mkdir"
{ say apply > "$SD/journal.new/kind" && say "$GENID.partial" > "$SD/journal.new/generation"; } \
    || unjournal "write"
# the stage's welcome mails move into the journal in one rename (same file system; a copy
# each cost a process per file: 30,000 for 10,000 new mailboxes)
if [ -d "$STAGE/welcome" ]; then
    mv "$STAGE/welcome" "$SD/journal.new/welcome" || unjournal "welcome mails"
else
    mkdir "$SD/journal.new/welcome" || unjournal "welcome mails"
fi
mv "$SD/journal.new" "$J" || unjournal "rename"
tick journal
fault journal

# prepared: every new file beside its target, checked, before the first rename -------------
undo_prepared() {
    unprepare "$G"; rm -rf "$J" "$G"
    fail "cannot write the new files ($1); nothing was changed" "$EXIT_NOT_STORED"
}
while read -r mode group path; do
    put "$STAGE/files$path" "$ROOT$path" "$mode" "$group" 2> "$STAGE/put.err" \
        || undo_prepared "$path: $(cat "$STAGE/put.err")"
    if [ -f "$STAGE/files$path.$DBEXT" ]; then
        put "$STAGE/files$path.$DBEXT" "$ROOT$path.$DBEXT" 0644 root 2> "$STAGE/put.err" \
            || undo_prepared "$path.$DBEXT: $(cat "$STAGE/put.err")"
    fi
done < "$META/$META_WRITE"
if [ -s "$META/$META_POSTCONF" ] && [ "$NOCMD" = 1 ]; then
    maincf_set < "$META/$META_POSTCONF" || undo_prepared "main.cf"
fi
for record in "$META_STATE" "$META_MANIFEST"; do  # named like the records they become
    cp "$META/$record" "$SD/$record.mailstate-new" || undo_prepared "$record"
done
tick prepared
fault prepared

# swap -----------------------------------------------------------------------------------
step swapping
abort() {
    say "error: $1" >&2
    restore || fail "the previous files could not all be put back; the journal is kept: run \
apply again to finish putting them back" "$EXIT_NOT_RESTORED"
    rm -rf "$J" "$G"
    exit "$EXIT_RESTORED"
}
while read -r _ _ path; do
    mv -f "$ROOT$path.mailstate-new" "$ROOT$path" || abort "cannot rename $path into place"
    if [ -f "$ROOT$path.$DBEXT.mailstate-new" ]; then
        mv -f "$ROOT$path.$DBEXT.mailstate-new" "$ROOT$path.$DBEXT" \
            || abort "cannot rename $path.$DBEXT into place"
    fi
    fault "rename:$path"
done < "$META/$META_WRITE"
while read -r path; do
    rm -f "$ROOT$path" "$ROOT$path.$DBEXT" || abort "cannot remove $path"
    fault "remove:$path"
done < "$META/$META_REMOVE"
tick swap
if [ -s "$META/$META_POSTCONF" ]; then
    if [ "$NOCMD" = 1 ]; then
        mv -f "$ROOT/etc/postfix/main.cf.mailstate-new" "$ROOT/etc/postfix/main.cf" \
            || abort "cannot rename main.cf into place"
    else
        postconf_set < "$META/$META_POSTCONF" || abort "postconf -e failed"
    fi
    tick postconf
    fault postconf
fi
if [ ! -d "$ROOT$vdir" ]; then
    mkdir -p "$ROOT$vdir" || abort "cannot create $vdir"
    [ "$NOCMD" = 1 ] || chown "$vuid:$vgid" "$ROOT$vdir" || abort "cannot chown $vdir"
fi

# reload what changed, probe -------------------------------------------------------------
step reloading
while read -r service; do
    reload_one "$service" || abort "$service did not come back after reload"
    if [ "$service" = postgrey ]; then
        differs=$(postgrey_diff "$(cat "$META/$META_POSTGREY_DEFAULT")")
        [ -z "$differs" ] || abort "$differs after the restart"
    fi
    tick "reload:$service"
    fault "reload:$service"
done < "$META/$META_RELOAD"
probe_delivery || abort "Dovecot cannot store mail in a mailbox after the reload"
tick probe

# manifest, commit -----------------------------------------------------------------------
for record in state.json manifest.json; do
    mv -f "$SD/$record.mailstate-new" "$SD/$record" || abort "cannot write $STATE_DIR/$record"
done
fault manifest
: > "$J/committed" || abort "cannot write the journal's commit mark"
fault committed
finalize
tick commit

# welcome mails, retention, done -----------------------------------------------------------
welcome_all
tick welcome
while read -r old; do
    rm -rf "$SD/generations/$old"
done < "$META/$META_PRUNE"
rm -rf "$STAGE"  # holds copies of password hashes; the generation keeps what is needed
# shellcheck disable=SC2012  # sorted by time, which find cannot; run ids are [0-9A-Za-z-]
ls -1t "$SD/runs" | tail -n +21 | while read -r old; do rm -rf "$SD/runs/$old"; done
rm -rf "$J"
tick "done"
fault "done"
say "generation $GENID active"
exit 0
