# mailstate: release a stale lock, after checking that it is stale.
#
# Argument: the state directory. The lock is flock(2) on STATE_DIR/lock, which the kernel
# releases when its holder dies; what a killed run leaves is its holder record
# (STATE_DIR/lock.holder) and perhaps a journal. A lock that a live process holds is never
# taken away: the script names the holder and exits 1.
SD="$ROOT$1"
if [ ! -f "$SD/lock" ]; then
    say "no lock on this server; nothing to release"
    exit 0
fi
if flock -n "$SD/lock" true; then
    if [ -f "$SD/lock.holder" ]; then
        say "released the lock left by a run that is gone: $(cat "$SD/lock.holder")"
        rm -f "$SD/lock.holder"
    else
        say "the lock is free; nothing to release"
    fi
    if [ -d "$SD/journal" ]; then
        say "an unfinished apply is recorded in $1/journal: the next apply completes or undoes it"
    fi
    exit 0
fi
holder=$(cat "$SD/lock.holder" 2>/dev/null || echo "an unknown process")
pid=${holder#pid }
pid=${pid%%,*}
if alive "$pid"; then
    say "error: not stale: a running apply holds the lock ($holder)" >&2
else
    say "error: not released: the lock is held by a process other than its recorded holder \
($holder, gone); find it with: fuser $1/lock" >&2
fi
exit 1
