# mailstate: wait for an activation started by server-push.sh and report its outcome.
#
# Arguments: the state directory, the run id. Prints the activation's output, exits with its
# exit status; EXIT_KILLED when it died without recording one (the next run completes or undoes
# it from the journal), EXIT_NOT_STARTED when no such activation was ever started (the upload
# did not complete; nothing was changed).
RUN="$ROOT$1/runs/$2"
named() {  # named WHAT: the number in the name of runs/RUN/WHAT.NUMBER (empty files)
    for _f in "$RUN/$1".*; do [ -e "$_f" ] && { say "${_f##*.}"; return 0; }; done
    return 1
}
outcome() { named exit; }  # the activation's exit status, once recorded
shown=0
show() {  # the activation's output lines not shown yet, as they come (progress included)
    [ -f "$RUN/out" ] || return 0
    n=$(wc -l < "$RUN/out")
    [ "$n" -le "$shown" ] || sed -n "$((shown + 1)),${n}p" "$RUN/out"
    shown=$n
}
i=0
while ! outcome > /dev/null; do
    show
    i=$((i + 1))
    spawn=$(named spawn)
    if [ -z "$spawn" ]; then
        if [ "$i" -gt 50 ]; then
            say "error: activation $2 was never started (the upload did not complete); nothing was changed" >&2
            exit "$EXIT_NOT_STARTED"
        fi
    else
        pid=$(named pid)
        if [ -n "$pid" ]; then
            alive "$pid" || break
        elif ! alive "$spawn" && [ "$i" -gt 20 ]; then
            break
        fi
    fi
    sleep 0.1
    [ $((i % 20)) -ne 0 ] || printf '\0' >&2  # a heartbeat: the client sees the link is up
done
[ -f "$RUN/out" ] && sed -n "$((shown + 1)),\$p" "$RUN/out"
[ -f "$RUN/err" ] && cat "$RUN/err" >&2
rc=$(outcome) && exit "$rc"
if [ -z "$(named pid)" ]; then
    st=$(cat "$RUN/upload" 2>/dev/null)
    case "$st" in stage.?*) rm -rf "$ROOT$1/${st:?}" ;; esac
    say "error: activation $2 did not start; nothing was changed" >&2
    exit "$EXIT_NOT_STARTED"
fi
say "error: activation $2 was killed before it finished (no outcome recorded)" >&2
exit "$EXIT_KILLED"
