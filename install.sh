#!/bin/sh
# Install mailstate into ./.venv with the tested dependency versions (constraints.txt).
#
# Debian's own Python refuses installs into the system (PEP 668), so mailstate gets a virtual
# environment of its own. On a fresh Debian that lacks the venv module, root gets it installed
# (python3-venv); any other user is told the one command to run.
#   sh install.sh           mailstate only        ->  .venv/bin/mailstate
#   sh install.sh test      also the test tools   ->  .venv/bin/python3 -m pytest
set -eu
cd "$(dirname "$0")"
extra=""
[ "${1:-}" = "test" ] && extra="[test]"

if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        echo "install.sh: installing Debian's python3-venv" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
                 apt-get install -y -q python3-venv >/dev/null; }
    else
        echo "install.sh: Python's venv module is missing; as root run: apt-get install python3-venv" >&2
        exit 1
    fi
fi
[ -x .venv/bin/pip ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -c constraints.txt ".$extra"
echo "installed: $(.venv/bin/mailstate --version)" >&2
