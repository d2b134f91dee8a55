#!/bin/sh
# mailstate: check, switch to and reload a staged generation; finishes whole or not at all.
#
# Started by server-push.sh in a session of its own, so that it finishes whatever happens to
# the SSH connection; its output and exit status go to STATE_DIR/runs/RUN/. Everything it acts
# on is listed in files under meta/ (written by mailstate from validated data); this script
# itself is the same on every server and every apply.
#
# The files the daemons read live in generations: STATE_DIR/live/GEN/files/PATH holds every
# managed file (and postmap's indexed map beside each map), and STATE_DIR/live/current is a
# symbolic link to one of them. Each managed PATH (and PATH.db or .lmdb) is a relative symbolic
# link to STATE_DIR/live/current/files/PATH. Switching `current` is one rename(2): at every
# instant, even after a SIGKILL of everything or a power cut, each daemon reads the whole old
# generation or the whole new one, never some files of each. Steps (the names are those of the
# test-only fault hook, see server-lib.sh):
#
#   lock        one apply at a time (flock, waits up to meta/lock_timeout seconds); the holder
#               is recorded in STATE_DIR/lock.holder; stages and partial generations left by
#               killed runs are removed; an unfinished journal is completed or undone first;
#   (compare)   the live files, the manifest, the recorded state and the main.cf settings must
#               still be what the plan saw (meta/expect, meta/expect_postconf);
#   (safe)      no managed path or parent directory is a symbolic link (other than mailstate's
#               own link into the current generation), owned by another user, or writable by
#               group or others;
#   checked     postmap into the stage, doveconf -n with the staged Dovecot files, sievec;
#               the mail directory must belong to the mail user;
#   kept        the current files are copied (every copy checked) to generations/GEN.partial,
#               which a later rollback puts back;
#   journal     STATE_DIR/journal records what this run is about to do (the generation, the
#               live generations before and after, the daemons to reload, the welcome mails);
#               from here on a killed run is completed or undone by the next one (and by the
#               recovery kit in the journal, see server-push.sh);
#   adopted     a managed file that is still a plain file (a server moving to this layout, or
#               a file replaced by hand) is copied into the current generation, then replaced
#               by its link: the same bytes, so the daemons see no change;
#   prepared    the new generation is complete: a copy of the current one with the new files
#               and maps put in and the removed ones taken out;
#   link:PATH   a link made for a path new in this generation (it points to nothing until the
#               switch: absent, as in the old generation);
#   switched    STATE_DIR/live/current renamed over: the daemons read the new generation;
#   postconf    main.cf settings; reload:SERVICE each reload (postgrey is then checked to run
#               the options of /etc/default/postgrey); then some mailboxes are opened as the
#               mail user (probe);
#   manifest    state.json and manifest.json written;
#   committed   the journal's commit mark: from here on the run is completed, never undone;
#   welcome:LOGIN each welcome mail, sent once (marked in the journal);
#   done        the links of removed files, older live generations and old kept generations
#               pruned, the journal removed.
#
# A failure before `switched` changes nothing the daemons read. A failure after it switches
# back to the old generation, puts the settings and records back, reloads, and exits
# EXIT_RESTORED (or EXIT_NOT_RESTORED when even that failed: the journal stays for the next
# run). The exit codes and the meta/ names are in server-contract.sh. meta/mode "rollback"
# puts a kept generation back the same way (a new live generation, one switch); "recover"
# only completes or undoes an unfinished journal.
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
L="$SD/live"  # the live generations and the `current` link (server-lib.sh: link_of, ours)
put() {  # $1 source, $2 target, $3 mode, $4 group
    # One process per file: install unlinks what is there, creates the copy unreadable
    # (umask 077), then gives it its group and mode, so a passwd-file is never world-readable.
    [ -d "${2%/*}" ] || mkdir -p "${2%/*}" || return 1
    umask 077
    if [ "$NOCMD" = 1 ]; then install -m "$3" "$1" "$2"
    else install -m "$3" -g "${4:-root}" "$1" "$2"; fi
    _rc=$?
    umask 022
    return $_rc
}
swap() {  # $1 source, $2 live plain file, $3 mode, $4 group: renamed into place
    put "$1" "$2.mailstate-new" "$3" "${4:-root}" && mv -f "$2.mailstate-new" "$2"
}
current_gen() {  # the live generation `current` points to (nothing before the first apply)
    readlink "$L/current" 2>/dev/null || :
}
switch_to() {  # $1 a live generation: `current` points to it, in one rename(2)
    rm -f "$L/current.new" && ln -s "$1" "$L/current.new" \
        && mv -fT "$L/current.new" "$L/current"
}
link_path() {  # $1 a managed path becomes mailstate's link; a plain file there is first
    # copied into the current generation $2 (the same bytes: the daemons see no change)
    if [ -L "$ROOT$1" ] || [ -e "$ROOT$1" ]; then
        { [ -f "$ROOT$1" ] && [ ! -L "$ROOT$1" ]; } || { say "$1 is not a plain file" >&2; return 1; }
        { mkdir -p "$L/$2/files${1%/*}" && cp -p "$ROOT$1" "$L/$2/files$1"; } || return 1
    else
        mkdir -p "$ROOT${1%/*}" || return 1
    fi
    rm -f "$ROOT$1.mailstate-new" && ln -s "$(link_of "$1")" "$ROOT$1.mailstate-new" \
        && mv -fT "$ROOT$1.mailstate-new" "$ROOT$1"
}
unlinked() {  # absolute paths on stdin: those that are not mailstate's link yet (one find per
    # directory and one awk, not a readlink per file: 10,000 Sieve scripts)
    sort -u > "$STAGE/paths" || return 1
    sed 's,/[^/]*$,,' "$STAGE/paths" | sort -u | while IFS= read -r _d; do
        [ -d "$ROOT$_d" ] && find "$ROOT$_d/" -maxdepth 1 -type l -printf '%p\t%l\n'
    done > "$STAGE/links"
    awk -F'\t' -v root="$ROOT" -v sd="${STATE_DIR#/}" -v links="$STAGE/links" '
        FILENAME == links { link[substr($1, length(root) + 1)] = $2; next }
        { n = split($0, part, "/"); up = ""; for (i = 2; i < n; i++) up = up "../"
          if (link[$0] != up sd "/live/current/files" $0) print }' "$STAGE/links" "$STAGE/paths"
}
files_of() {  # $1 a live generation: the absolute paths of its files
    (cd "$L/$1/files" && find . -type f) | sed 's,^\.,,'
}
adopt() {  # $1 the current generation: every managed file the plan saw that is still a plain
    # file (and its indexed map) goes into it and becomes a link
    while read -r _sum _path; do
        [ "$_sum" = absent ] && continue
        case "$_path" in "$STATE_DIR/manifest.json"|"$STATE_DIR/state.json") continue ;; esac
        for _p in "$_path" "$_path.$DBEXT"; do
            if [ -f "$ROOT$_p" ] && [ ! -L "$ROOT$_p" ]; then link_path "$_p" "$1" || return 1; fi
        done
    done < "$META/$META_EXPECT"
}
link_all() {  # $1 a new live generation, $2 the current one: every file of $1 gets its link
    # (a path new in $1 points to nothing until the switch: absent, as before)
    files_of "$1" | unlinked > "$STAGE/unlinked" || return 1
    while IFS= read -r _p; do
        link_path "$_p" "$2" || return 1
        fault "link:$_p"
    done < "$STAGE/unlinked"
}
unlink_new() {  # $1 a live generation given up, $2 the current one: the links made for paths
    # that only $1 has (they point to nothing) go
    [ -d "$L/$1/files" ] || return 0
    files_of "$1" | while IFS= read -r _p; do
        [ -e "$L/$2/files$_p" ] || ! ours "$_p" || rm -f "$ROOT$_p"
    done
}
unlink_removed() {  # $1 a list of removed paths: their links (pointing to nothing now) go
    while IFS= read -r _p; do
        for _q in "$_p" "$_p.$DBEXT"; do
            if ours "$_q" || { [ -f "$ROOT$_q" ] && [ ! -L "$ROOT$_q" ]; }; then rm -f "$ROOT$_q"; fi
        done
    done < "$1"
}
prune_live() {  # every live generation but the current one (and those a journal names) goes,
    # and any temporary link a killed run left beside a managed path
    [ -d "$L" ] || return 0
    _cur=$(current_gen)
    for _g in "$L"/*; do
        [ -d "$_g" ] || [ -L "$_g" ] || continue
        _n="${_g##*/}"
        [ "$_n" = current ] || [ "$_n" = "$_cur" ] && continue
        if [ -d "$J" ]; then
            [ "$_n" = "$(cat "$J/old" 2>/dev/null)" ] || [ "$_n" = "$(cat "$J/new" 2>/dev/null)" ] \
                && continue
        fi
        [ -d "$_g/files" ] && files_of "$_n" | untemp
        rm -rf "$_g"
    done
    [ -z "$_cur" ] || files_of "$_cur" | untemp
}
untemp() {  # paths on stdin: the temporary link a killed run left beside each goes (only
    # mailstate's own: another link there is refused by the safety check, never followed)
    while IFS= read -r _p; do
        [ -L "$ROOT$_p.mailstate-new" ] || continue
        [ "$(readlink "$ROOT$_p.mailstate-new")" = "$(link_of "$_p")" ] \
            && rm -f "$ROOT$_p.mailstate-new"
    done
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
put_record() {  # $1 source, $2 name in the state directory (it holds password hashes: 0600)
    (umask 077 && cp "$1" "$SD/$2.mailstate-new") && mv -f "$SD/$2.mailstate-new" "$SD/$2"
}
restore_settings() {  # the main.cf settings and records kept in G, then reload; 1 on a failure
    rok=0
    if [ -f "$G/postconf" ]; then postconf_set < "$G/postconf" || rok=1; fi
    if [ -s "$G/postconf_unset" ]; then xargs postconf -X < "$G/postconf_unset" || rok=1; fi
    if [ -f "$G/main.cf" ]; then swap "$G/main.cf" "$ROOT/etc/postfix/main.cf" 0644 root || rok=1; fi
    for record in manifest.json state.json; do
        if [ -f "$G/$record" ]; then put_record "$G/$record" "$record" || rok=1
        else rm -f "$SD/$record"; fi
    done
    rm -f "$ROOT/etc/postfix/main.cf.mailstate-new" "$SD/state.json.mailstate-new" \
        "$SD/manifest.json.mailstate-new"
    reload_all || say "warning: a daemon did not come back after the files were put back" >&2
    return $rok
}
restore_plain() {  # a server whose files are not linked yet (a journal of an older mailstate):
    # put back the files kept in G one by one, as that mailstate did
    rok=0
    while read -r mode group path; do
        rm -f "$ROOT$path.mailstate-new" "$ROOT$path.$DBEXT.mailstate-new"
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
    restore_settings || rok=1
    return $rok
}
undo() {  # before the commit mark: back to the live generation of the journal, one switch
    say "switching back to the files before generation $(basename "$G" .partial)" >&2
    old=$(cat "$J/old") new=$(cat "$J/new")
    switch_to "$old" || return 1
    unlink_new "$new" "$old"
    restore_settings || return 1
    rm -rf "${L:?}/$new"
}
rollback_files() {  # a new live generation with the files kept in G put back, one switch
    say "restoring the files kept in generation $(basename "$G" .partial)" >&2
    old=$(current_gen)
    [ -n "$old" ] || { restore_plain; return; }  # never linked: the files are plain
    new="$RUNID.rollback"
    N="$L/$new"
    say "$new" > "$J/new" || return 1
    { rm -rf "$N" && mkdir -p "$N/files" && cp -a "$L/$old/files/." "$N/files/"; } || return 1
    while read -r mode group path; do
        rm -f "$N/files$path.$DBEXT"
        if [ -f "$G/files$path" ]; then put "$G/files$path" "$N/files$path" "$mode" "$group" \
            || return 1; fi
    done < "$G/$META_WRITE"
    while read -r path; do
        if [ -f "$G/files$path" ]; then put "$G/files$path" "$N/files$path" 0644 root \
            || return 1; fi
    done < "$G/$META_REMOVE"
    while read -r path; do rm -f "$N/files$path" "$N/files$path.$DBEXT"; done < "$G/created"
    if [ "$NOCMD" != 1 ]; then
        while read -r path; do
            if [ -f "$N/files$path" ]; then postmap "$DBTYPE:$N/files$path" || return 1; fi
        done < "$G/$META_POSTMAP"
    fi
    link_all "$new" "$old" || return 1
    switch_to "$new" || return 1
    unlink_removed "$G/created"
    restore_settings || return 1
    prune_live
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
recovery_kit() {  # $1 a journal being written: this script and the meta/ of a "recover" run,
    # for server-push.sh's watch (it completes or undoes the journal when this run dies)
    mkdir "$1/recover" "$1/recover/meta" && cp "$0" "$1/recover/activate.sh" || return 1
    for _m in "$META_STATE_DIR" "$META_LOCK_TIMEOUT" "$META_HOLDER" "$META_DB_TYPE"; do
        cp "$META/$_m" "$1/recover/meta/$_m" || return 1
    done
    say recover > "$1/recover/meta/$META_MODE"
}
finalize() {  # after the commit mark: the links of removed files go, the kept generation
    # keeps its final name (or goes if empty), older live generations go
    gen=$(cat "$J/generation")
    _g="$SD/generations/$gen"
    [ -d "$_g" ] || _g="$SD/generations/${gen%.partial}"
    [ -f "$_g/$META_REMOVE" ] && unlink_removed "$_g/$META_REMOVE"
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
        prune_live
        say "completed an unfinished $kind (it had passed its commit mark)"
    elif [ "$kind" = rollback ]; then
        rollback_files || fail "the unfinished rollback could not be completed; run again" \
            "$EXIT_NOT_RESTORED"
        rm -rf "$J"
        say "completed the unfinished rollback to generation $gen"
    elif [ -f "$J/old" ]; then
        undo || fail "the files of an unfinished apply could not all be put back; run again" \
            "$EXIT_NOT_RESTORED"
        rm -rf "$G" "$J"
        prune_live
        say "undid an unfinished apply: the files before it were put back and reloaded"
    else
        restore_plain || fail "the files of an unfinished apply could not all be put back; run \
again" "$EXIT_NOT_RESTORED"
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
for d in generations journal live; do
    [ -L "$SD/$d" ] && fail "refusing to use $STATE_DIR: $STATE_DIR/$d is a symbolic link" \
        "$EXIT_UNSAFE_PATH"
done
mkdir -p "$SD/generations" "$L" || fail "cannot create $STATE_DIR/generations" "$EXIT_NOT_STORED"
case "$(current_gen)" in
    */*|.*) fail "refusing to use $STATE_DIR: $STATE_DIR/live/current does not name a generation \
of its own" "$EXIT_UNSAFE_PATH" ;;
esac
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
[ -d "$J" ] || prune_live
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
    { mkdir -m 700 "$SD/journal.new" && say rollback > "$SD/journal.new/kind" \
        && say "$target" > "$SD/journal.new/generation" \
        && say "$(current_gen)" > "$SD/journal.new/old" && recovery_kit "$SD/journal.new" \
        && mv "$SD/journal.new" "$J"; } \
        || fail "cannot write the journal in $STATE_DIR; nothing was changed" "$EXIT_NOT_STORED"
    fault journal
    step restoring
    rollback_files || fail "the files of generation $target could not all be put back; the journal \
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
        # The copies of mailstate's links (relative) point to nothing: each gets the content
        # of the file it names on the server; a file this apply removes leaves the copy.
        # shellcheck disable=SC2044  # /etc/dovecot's names have no blanks; a `while read`
        # in a pipe would run `fail` in a subshell, which would not stop this script
        for copy in $(find "$STAGE/dovecot-check" -type l); do
            [ -e "$copy" ] && continue
            path="/etc/dovecot${copy#"$STAGE/dovecot-check"}"
            rm -f "$copy" || fail "cannot replace $path for the check"
            if ! grep -qxF "$path" "$META/$META_REMOVE" && [ -f "$ROOT$path" ]; then
                cp "$ROOT$path" "$copy" || fail "cannot copy $path for the check"
            fi
        done
        fragment=$(cat "$META/$META_DOVECOT_FRAGMENT")
        check_frag="$STAGE/dovecot-check/conf.d/$(basename "$fragment")"
        if [ -f "$STAGE/files$fragment" ]; then
            { rm -f "$check_frag" && cp "$STAGE/files$fragment" "$check_frag"; } \
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
OLD=$(current_gen)
if [ -z "$OLD" ]; then  # the first apply of this layout: an empty generation nobody reads yet
    OLD="$GENID.base"
    { mkdir -p "$L/$OLD/files" && switch_to "$OLD"; } || unjournal "live generation"
fi
mkdir -m 700 "$SD/journal.new" || unjournal "mkdir"
{ say apply > "$SD/journal.new/kind" && say "$GENID.partial" > "$SD/journal.new/generation" \
    && say "$OLD" > "$SD/journal.new/old" && say "$GENID" > "$SD/journal.new/new"; } \
    || unjournal "write"
# the stage's welcome mails move into the journal in one rename (same file system; a copy
# each cost a process per file: 30,000 for 10,000 new mailboxes)
if [ -d "$STAGE/welcome" ]; then
    mv "$STAGE/welcome" "$SD/journal.new/welcome" || unjournal "welcome mails"
else
    mkdir "$SD/journal.new/welcome" || unjournal "welcome mails"
fi
recovery_kit "$SD/journal.new" || unjournal "recovery kit"
mv "$SD/journal.new" "$J" || unjournal "rename"
tick journal
fault journal

# prepared: the new live generation, complete, and a link at every path it has -------------
undo_prepared() {  # nothing the daemons read has changed: the links hold the same bytes
    unlink_new "$GENID" "$OLD"
    rm -rf "${L:?}/$GENID" "$J" "$G"
    rm -f "$ROOT/etc/postfix/main.cf.mailstate-new" "$SD/state.json.mailstate-new" \
        "$SD/manifest.json.mailstate-new"
    fail "cannot write the new files ($1); nothing was changed" "$EXIT_NOT_STORED"
}
adopt "$OLD" 2> "$STAGE/put.err" || undo_prepared "$(cat "$STAGE/put.err")"
fault adopted
N="$L/$GENID"
{ rm -rf "$N" && mkdir -p "$N/files" && cp -a "$L/$OLD/files/." "$N/files/"; } 2> "$STAGE/put.err" \
    || undo_prepared "copy of the live generation: $(cat "$STAGE/put.err")"
while read -r mode group path; do
    rm -f "$N/files$path.$DBEXT"
    put "$STAGE/files$path" "$N/files$path" "$mode" "$group" 2> "$STAGE/put.err" \
        || undo_prepared "$path: $(cat "$STAGE/put.err")"
    if [ -f "$STAGE/files$path.$DBEXT" ]; then
        put "$STAGE/files$path.$DBEXT" "$N/files$path.$DBEXT" 0644 root 2> "$STAGE/put.err" \
            || undo_prepared "$path.$DBEXT: $(cat "$STAGE/put.err")"
    fi
done < "$META/$META_WRITE"
while read -r path; do rm -f "$N/files$path" "$N/files$path.$DBEXT"; done < "$META/$META_REMOVE"
if [ -s "$META/$META_POSTCONF" ] && [ "$NOCMD" = 1 ]; then
    maincf_set < "$META/$META_POSTCONF" || undo_prepared "main.cf"
fi
for record in "$META_STATE" "$META_MANIFEST"; do  # named like the records they become
    (umask 077 && cp "$META/$record" "$SD/$record.mailstate-new") || undo_prepared "$record"
done
tick prepared
fault prepared
link_all "$GENID" "$OLD" 2> "$STAGE/put.err" || undo_prepared "$(cat "$STAGE/put.err")"
tick link

# switch: one rename(2), the daemons read the new generation -----------------------------
step swapping
abort() {
    say "error: $1" >&2
    undo || fail "the previous files could not all be put back; the journal is kept: run \
apply again to finish putting them back" "$EXIT_NOT_RESTORED"
    rm -rf "$J" "$G"
    prune_live
    exit "$EXIT_RESTORED"
}
switch_to "$GENID" || abort "cannot switch $STATE_DIR/live/current to $GENID"
# A Postfix process notices a changed map by its open file's time stamp, not by its path: the
# old generation's maps are dated now, so each process restarts with the new ones after its
# current request, as Dovecot (which looks at the path) does at once; the reload follows.
find "$L/$OLD/files" -name "*.$DBEXT" -exec touch {} + 2>/dev/null
tick swap
fault switched
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
prune_live
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
