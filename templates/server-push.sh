# mailstate: receive a staged generation and start its activation, detached from this session.
#
# Arguments: the state directory, the run id, the sha256 of the tar on standard input.
# The tar is stored and checked whole before anything is unpacked: a connection that drops
# during the upload leaves nothing to activate. Once it is complete, activate.sh runs in a
# session of its own (setsid) with its output in STATE_DIR/runs/RUN/, and this script only waits
# for its outcome: killing this session, the client or the network does not stop it. A client
# that lost the connection reads the outcome with server-wait.sh.
set -u
umask 077
STATE_DIR="$1"
RUNID="$2"
SUM="$3"
SD="$ROOT$STATE_DIR"
refuse() { cat > /dev/null; say "error: $1; nothing was changed" >&2; exit "$2"; }  # read it all
if why=$(unsafe_dir "$STATE_DIR"); then
    refuse "refusing to use $STATE_DIR: $why" "$EXIT_UNSAFE_PATH"
fi
# 0711: the daemons reach the live generations (STATE_DIR/live) through the links at the
# managed paths; everything else in it is root's alone (records 0600, the rest 0700)
{ mkdir -p "$SD" && chmod 600 "$SD/state.json" "$SD/manifest.json" 2>/dev/null; chmod 711 "$SD"; } \
    || refuse "cannot create $STATE_DIR" "$EXIT_NOT_STORED"
stage=$(mktemp -d "$SD/stage.XXXXXX") || refuse "cannot create a stage in $STATE_DIR" \
    "$EXIT_NOT_STORED"
echo $$ > "$stage/.pid"
gone() { rm -rf "$stage"; say "error: $1; nothing was changed" >&2; exit "$EXIT_NOT_STORED"; }
out=$(cat 2>&1 > "$stage/upload.tar") || gone "the upload could not be stored: $out"
got=$(sha256sum < "$stage/upload.tar" | cut -d' ' -f1)
[ "$got" = "$SUM" ] || gone "the upload is incomplete (checksum mismatch)"
out=$(tar -xf "$stage/upload.tar" -C "$stage" 2>&1) || gone "the upload could not be unpacked: $out"
rm -f "$stage/upload.tar"
trap '' HUP PIPE  # the upload is complete: a session that goes away now must not stop it
RUN="$SD/runs/$RUNID"
{ mkdir -p "$RUN" && basename "$stage" > "$RUN/upload"; } \
    || gone "cannot record the run in $STATE_DIR/runs"
fault uploaded 2>> "$RUN/err"
say "@step activating"  # progress for mailstate (not shown as output)
# The watch: when the activation dies without an outcome (SIGKILL, the OOM killer), the
# recovery kit it left in its journal completes or undoes it at once, without waiting for
# anyone (its output goes to runs/RUN.recover/). MAILSTATE_FAULT "watch:kill" (test-only): no
# watch, as after a power cut; the next apply then finds the journal.
# shellcheck disable=SC2016  # expanded by the watch itself
WATCH='sh "$1/activate.sh" "$2"
for f in "$3"/exit.*; do [ -e "$f" ] && exit 0; done
case " ${MAILSTATE_FAULT:-} " in *" watch:kill "*) exit 0 ;; esac
[ -f "$4/journal/recover/activate.sh" ] || exit 0
mkdir -p "$3.recover" || exit 0
MAILSTATE_FAULT= sh "$4/journal/recover/activate.sh" "$2.recover" > "$3.recover/out" \
    2> "$3.recover/err" < /dev/null'
setsid sh -c "$WATCH" watch "$stage" "$RUNID" "$RUN" "$SD" > "$RUN/out" 2>> "$RUN/err" \
    < /dev/null &
: > "$RUN/spawn.$!"
