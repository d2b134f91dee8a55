#!/bin/bash
# PID 1 of a mailstate test host (its own mount, UTS, PID and network namespaces).
#
# Mounts the host's private files over the standard paths, then runs the daemons in the
# foreground as its children: postfix start-fg, dovecot -F, sshd -D -e and postgrey. A restart of
# postgrey is asked for through the control FIFO (see testhost-restart-postgrey). SIGTERM stops
# everything; SIGKILL of this process ends the whole PID namespace.
#
# Environment: TESTHOST_BASE (the host's base directory), TESTHOST_FQDN (its hostname).
set -u
base=$TESTHOST_BASE
if [ "${TESTHOST_PHASE:-}" != daemons ]; then
    exec >>"$base/root/var/log/testhost-init.log" 2>&1
    exec 4>"$base/status"  # read by the runner; $base is hidden once /tmp is mounted
fi
log() { echo "$(date '+%F %T.%3N') init: $*"; }
fail() { log "FATAL: $*"; echo "failed: $*" >&4; exit 1; }

# --- filesystem -----------------------------------------------------------------------------
# Runs twice for a host of another Debian release: first on the machine's root (mounts, then
# chroot into the release's root), then inside it (TESTHOST_PHASE=daemons) for the daemons.
if [ "${TESTHOST_PHASE:-}" != daemons ]; then
    # TESTHOST_LOWER: the cached root of another release; the host runs on an overlay of it
    # (writes land in $base/upper), so missing mount points are made in the overlay.
    newroot=""
    if [ -n "${TESTHOST_LOWER:-}" ]; then
        newroot=$base/merged
        mkdir -p "$base/upper" "$base/work" "$newroot"
        mount -t overlay overlay \
            -o "lowerdir=$TESTHOST_LOWER,upperdir=$base/upper,workdir=$base/work" "$newroot" \
            || fail "overlay of $TESTHOST_LOWER"
    fi
    # On the machine's own root a missing mount point must not be created on the machine:
    # its top directory (/etc, /var) gets a private overlay first, in this mount namespace only.
    overlaid=" "
    while read -r src dst; do
        { [ -z "$newroot" ] && [ ! -e "$dst" ] && [ ! -L "$dst" ]; } || continue
        top=/$(printf '%s' "$dst" | cut -d/ -f2)
        case $overlaid in *" $top "*) continue ;; esac
        ovl=$base/overlay$(printf '%s' "$top" | tr / -)
        mkdir -p "$ovl/upper" "$ovl/work"
        mount -t overlay overlay -o "lowerdir=$top,upperdir=$ovl/upper,workdir=$ovl/work" "$top" \
            || fail "overlay of $top"
        overlaid="$overlaid$top "
    done <"$base/mounts"
    while read -r src dst; do
        target=$newroot$dst
        if [ ! -e "$target" ] && [ ! -L "$target" ]; then
            if [ -d "$base/root$src" ]; then mkdir -p "$target"; else
                mkdir -p "$(dirname "$target")" && : >"$target"; fi
        fi
        mount --bind "$base/root$src" "$target" || fail "bind $dst"
    done <"$base/mounts"
    if [ -n "$newroot" ]; then
        mount -t proc proc "$newroot/proc" || fail "proc in $newroot"
        mount --rbind /dev "$newroot/dev" || fail "dev in $newroot"
    fi
    mount -t tmpfs -o mode=0755,size=64m tmpfs "$newroot/run" || fail "tmpfs /run"
    mkdir -p "$newroot/run/testhost"
    if [ -n "$newroot" ]; then
        cp "$0" "$newroot/run/testhost/init.sh"
        mount -t tmpfs -o mode=1777,size=256m tmpfs "$newroot/tmp" || fail "tmpfs /tmp"
        cd "$newroot" || fail "cd $newroot"
        TESTHOST_PHASE=daemons exec chroot . /bin/bash /run/testhost/init.sh
    fi
    # A server does not share /tmp with the test runner (mount after the last read from $base).
    mount -t tmpfs -o mode=1777,size=256m tmpfs /tmp || fail "tmpfs /tmp"
fi
mkdir -p /run/sshd /run/testhost /run/lock && chmod 0755 /run/sshd
mkfifo -m 0600 /run/testhost/control || fail "control fifo"
hostname "$TESTHOST_FQDN"

# --- daemons --------------------------------------------------------------------------------
declare -A pids=()
start() {  # start NAME LOGFILE CMD...
    local name=$1 logfile=$2
    shift 2
    "$@" >>"$logfile" 2>&1 </dev/null &
    pids[$name]=$!
    log "started $name (pid $!): $*"
}

alive() {  # a zombie still answers kill -0, so read the state from /proc
    local state
    [ -r "/proc/$1/stat" ] || return 1
    read -r _ _ state _ <"/proc/$1/stat" || return 1
    [ "$state" != Z ]
}

postgrey_args() {  # print postgrey's arguments NUL-separated, as Debian's init script builds them
    (
        POSTGREY_OPTS="" POSTGREY_TEXT=""
        # shellcheck disable=SC1091
        [ -r /etc/default/postgrey ] && . /etc/default/postgrey
        [ -n "$POSTGREY_OPTS" ] || POSTGREY_OPTS="--inet=127.0.0.1:10023"
        by_host=""
        # Word splitting is intended: the variable holds a shell-style option list.
        # shellcheck disable=SC2086
        for opt in $POSTGREY_OPTS; do
            case $opt in
                --daemonize | -d) continue ;;  # must stay in the foreground, supervised by init
                --lookup-by-host) by_host=1 ;;
            esac
            printf '%s\0' "$opt"
        done
        [ -n "$by_host" ] || printf '%s\0' --lookup-by-host
        [ -z "$POSTGREY_TEXT" ] || printf '%s\0' "--greylist-text=$POSTGREY_TEXT"
    )
}

postgrey_listening() {  # postgrey_listening ARGS... : is the socket named in the args up?
    local opt spec port
    for opt in "$@"; do
        case $opt in
            --inet=*) spec=${opt#--inet=}; port=${spec##*:}
                [ -n "$(ss -Hltn "sport = :$port")" ]; return ;;
            --unix=*) [ -S "${opt#--unix=}" ]; return ;;
        esac
    done
    return 1
}

stop_postgrey() {
    local pid=${pids[postgrey]:-} i
    if [ -n "$pid" ] && alive "$pid"; then
        kill -TERM "$pid"
        for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
        alive "$pid" && kill -KILL "$pid"
        wait "$pid" 2>/dev/null
    fi
    unset 'pids[postgrey]'
    rm -f /run/postgrey.pid
}

pg_args=()
start_postgrey() {
    echo starting >/run/testhost/postgrey.state
    mapfile -d '' pg_args < <(postgrey_args)
    start postgrey /var/log/postgrey.log /usr/sbin/postgrey "${pg_args[@]}"
    echo "${pids[postgrey]}" >/run/postgrey.pid
}

await_postgrey() {  # until it listens (state running) or exits (state failed), at most 15 s
    local pid=${pids[postgrey]} i
    for ((i = 0; i < 300; i++)); do
        if ! alive "$pid"; then
            log "postgrey exited during startup (see /var/log/postgrey.log)"
            echo failed >/run/testhost/postgrey.state
            break
        fi
        if postgrey_listening "${pg_args[@]}"; then
            echo running >/run/testhost/postgrey.state
            break
        fi
        sleep 0.05
    done
    [ "$(cat /run/testhost/postgrey.state)" = starting ] && echo failed >/run/testhost/postgrey.state
    log "postgrey: $(cat /run/testhost/postgrey.state)"
}

shutdown() {
    local name pid i
    log "stopping"
    kill -TERM -1  # from PID 1: every other process of this PID namespace
    for ((i = 0; i < 20; i++)); do
        pid=""
        for name in "${!pids[@]}"; do alive "${pids[$name]}" && pid=1; done
        [ -z "$pid" ] && break
        sleep 0.1
    done
    log "stopped"
    exit 0  # the kernel SIGKILLs whatever is left in the PID namespace
}
trap shutdown TERM INT

# postgrey (perl) and Postfix's preparation are the slow parts: overlap them.
start_postgrey
start dovecot /var/log/dovecot.log dovecot -F
start sshd /var/log/sshd.log /usr/sbin/sshd -D -e
# Postfix: queue dirs, chroot copies of /etc files, permissions (Debian's master.cf chroots).
# Debian 13's postfix start runs configure-instance.sh itself (and refuses to be run by hand).
if ! grep -q 'internal script used by postfix' /usr/lib/postfix/configure-instance.sh; then
    /usr/lib/postfix/configure-instance.sh - || fail "configure-instance.sh"
fi
postfix check || fail "postfix check"
start postfix /var/log/postfix.log postfix start-fg
await_postgrey
echo running >&4

# --- supervision loop: control requests, and a note when a daemon dies ----------------------
exec 3<>/run/testhost/control
partial=""
while :; do
    # A trapped SIGTERM waits for `read` to return: keep the timeout short. A timeout can come
    # in the middle of a request line (read takes a FIFO byte by byte): bash keeps what it read
    # in the variable, and it is the start of the next line ("estart-postgrey" otherwise).
    line=""
    if ! read -r -t 0.2 line <&3; then
        partial=$partial$line
        line=""
    elif [ -n "$partial" ]; then
        line=$partial$line
        partial=""
    fi
    if [ -n "$line" ]; then
        read -r request token <<<"$line"
        case $request in
            restart-postgrey)
                stop_postgrey
                start_postgrey
                await_postgrey
                # write then rename: the requester waits for a non-empty file
                cp /run/testhost/postgrey.state "/run/testhost/.reply.$token"
                mv "/run/testhost/.reply.$token" "/run/testhost/reply.$token"
                ;;
            *) log "unknown request: $request" ;;
        esac
    fi
    for name in "${!pids[@]}"; do
        if ! alive "${pids[$name]}"; then
            log "$name (pid ${pids[$name]}) exited"
            unset "pids[$name]"
            [ "$name" = postgrey ] && echo exited >/run/testhost/postgrey.state
        fi
    done
done
