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
{ mkdir -p "$SD" && chmod 700 "$SD"; } || refuse "cannot create $STATE_DIR" "$EXIT_NOT_STORED"
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
setsid sh "$stage/activate.sh" "$RUNID" > "$RUN/out" 2>> "$RUN/err" < /dev/null &
: > "$RUN/spawn.$!"
