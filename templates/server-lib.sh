# mailstate: shell functions shared by the server scripts (prepended to each of them).
#
# ROOT prefixes every path (the local target); NOCMD=1 skips the server programs.
ROOT="${MAILSTATE_ROOT:-}"
NOCMD="${MAILSTATE_NO_COMMANDS:-0}"

say() { printf '%s\n' "$*"; }

alive() {  # alive PID: the process exists and is not a zombie
    [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
    read -r _ _ pstate _ < "/proc/$1/stat" 2>/dev/null || return 1
    [ "$pstate" != Z ]
}

# Test-only fault hook. MAILSTATE_FAULT="STEP:kill" makes the script SIGKILL itself right after
# STEP; "STEP:pause=N" sleeps N seconds there (the log says so first), so that a test can kill
# the client, the SSH session or the network at exactly that point. Several, separated by
# spaces, may be given. Unset in normal use.
fault() {
    for _f in ${MAILSTATE_FAULT:-}; do
        case "$_f" in
            "$1:kill") say "fault: SIGKILL after $1" >&2; kill -9 $$ ;;
            "$1:pause="*) say "fault: paused after $1" >&2; sleep "${_f##*=}" 9>&- ;;
        esac
    done
}

# link_of PATH: the relative symbolic link mailstate keeps at a managed PATH, to the same path
# in the live generation STATE_DIR/live/current (relative, so it resolves under ROOT too).
link_of() {
    _d="${1%/*}" _up=""
    while [ -n "$_d" ]; do _up="../$_up"; _d="${_d%/*}"; done
    say "$_up${STATE_DIR#/}/live/current/files$1"
}
ours() {  # ours PATH: PATH is mailstate's own link into the live generation
    [ -L "$ROOT$1" ] && [ "$(readlink "$ROOT$1")" = "$(link_of "$1")" ]
}

# unsafe_dir DIR: why writing below ROOT+DIR could go elsewhere or be tampered with (nothing
# when safe). Every existing component below ROOT must be a real directory (no symlink), owned
# by root (on the local target: by the user running it), not writable by group or others.
unsafe_dir() {
    _rest="${1#/}"
    _at="$ROOT"
    _me=$(id -u)
    while [ -n "$_rest" ]; do
        _part="${_rest%%/*}"
        case "$_rest" in */*) _rest="${_rest#*/}" ;; *) _rest="" ;; esac
        _at="$_at/$_part"
        if [ -L "$_at" ]; then say "${_at#"$ROOT"} is a symbolic link"; return 0; fi
        [ -e "$_at" ] || return 1
        if [ ! -d "$_at" ]; then say "${_at#"$ROOT"} is not a directory"; return 0; fi
        # shellcheck disable=SC2046
        set -- $(stat -c '%u %a' "$_at")
        if [ "$1" != 0 ] && [ "$1" != "$_me" ]; then
            say "${_at#"$ROOT"} is owned by uid $1, not root"; return 0
        fi
        if [ $((0$2 & 022)) -ne 0 ]; then
            say "${_at#"$ROOT"} is writable by group or others (mode $2)"; return 0
        fi
    done
    return 1
}

# unsafe_paths: reads absolute paths on stdin; prints the first reason one of them (its
# directories, itself, its temporary sibling) is not safe to write. Nothing when all are.
unsafe_paths() {
    sort -u > "${TMPDIR:-/tmp}/mailstate-paths.$$"
    while IFS= read -r _p; do
        if [ -L "$ROOT$_p" ] && ! ours "$_p"; then say "$_p is a symbolic link"; break; fi
        if [ -e "$ROOT$_p" ] && [ ! -f "$ROOT$_p" ]; then say "$_p is not a regular file"; break; fi
        if [ -L "$ROOT$_p.mailstate-new" ] \
                && [ "$(readlink "$ROOT$_p.mailstate-new")" != "$(link_of "$_p")" ]; then
            say "$_p.mailstate-new is a symbolic link"; break  # not a link a killed run left
        fi
    done < "${TMPDIR:-/tmp}/mailstate-paths.$$"
    sed 's,/[^/]*$,,' "${TMPDIR:-/tmp}/mailstate-paths.$$" | sort -u | while IFS= read -r _d; do
        if unsafe_dir "$_d"; then break; fi
    done
    rm -f "${TMPDIR:-/tmp}/mailstate-paths.$$"
}

# The options in /etc/default/postgrey that the running postgrey was not started with
# (nothing when it runs the file's settings, or when there is no postgrey to ask).
postgrey_diff() {
    [ "$NOCMD" = 1 ] && return 0
    _file="$ROOT$1"
    [ -f "$_file" ] || return 0
    _opts=$(sed -n 's/^POSTGREY_OPTS="\(.*\)"$/\1/p' "$_file" | tail -n 1)
    _pid=$(cat /run/postgrey.pid 2>/dev/null || cat /var/run/postgrey.pid 2>/dev/null)
    if [ -z "$_pid" ] || ! alive "$_pid"; then say "postgrey is not running"; return 0; fi
    _running=" $(tr '\0' ' ' < "/proc/$_pid/cmdline") "
    _missing=""
    for _o in $_opts; do
        case "$_o" in --daemonize|-d) continue ;; esac
        case "$_running" in *" $_o "*) ;; *) _missing="$_missing $_o" ;; esac
    done
    [ -z "$_missing" ] || say "postgrey runs without$_missing (pid $_pid)"
}
