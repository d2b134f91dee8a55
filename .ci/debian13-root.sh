#!/bin/sh
# Build or refresh the cached Debian 13 root that the Debian 13 test hosts run from (as root).
#
# Kept in MAILSTATE_TESTHOST_CACHE (default /var/cache/mailstate-testhost; let CI keep that
# directory between runs). A root that is current is reused in well under a second; a missing,
# stale (older than two weeks, other package set or mirror) or half-built one is built again
# with mmdebstrap from the mirror in this machine's apt sources (about a minute).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "$0: must run as root" >&2
    exit 1
fi
exec python3 -m tests.testhost root --release 13
