#!/bin/sh
# The README's first command on a fresh Debian 13 (trixie) with Debian's own Python, as root
# and as an ordinary user: in a throw-away overlay of the test hosts' Debian 13 root (built by
# tests/testhost, cached), with this commit's files and nothing else of this machine's Python.
# Usage: sh .ci/fresh-install.sh   (root; the Debian 13 root must exist, see .ci/run)
set -eu
cd "$(dirname "$0")/.."
lower="${MAILSTATE_TESTHOST_CACHE:-/var/cache/mailstate-testhost}/debian13/root"
[ -d "$lower/usr" ] || { echo "fresh-install: no Debian 13 root at $lower" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/mailstate-fresh.XXXXXX")
trap 'umount -R "$work/m" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/up" "$work/w" "$work/m" "$work/src"
git archive HEAD | tar -x -C "$work/src"

# Only what reaching the package registries needs passes in: the resolver and, where this
# machine sets one, pip's CA bundle and index.
cert="${PIP_CERT:-${SSL_CERT_FILE:-}}"
# shellcheck disable=SC2016  # the script is expanded by the sh it is given to, not here
unshare -m sh -eu -c '
    work=$1 lower=$2 cert=$3
    mount -t overlay overlay -o "lowerdir=$lower,upperdir=$work/up,workdir=$work/w" "$work/m"
    mount --bind /proc "$work/m/proc"; mount --bind /dev "$work/m/dev"
    cp /etc/resolv.conf "$work/m/etc/resolv.conf"
    [ -n "$cert" ] && cp "$cert" "$work/m/etc/ssl/host-ca.pem"
    mkdir -p "$work/m/root/ms" "$work/m/home/user/ms"
    cp -a "$work/src/." "$work/m/root/ms/"; cp -a "$work/src/." "$work/m/home/user/ms/"
    exec chroot "$work/m" /bin/sh -eu -c "
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends python3 ca-certificates >/dev/null 2>&1
        echo \"Debian \$(cat /etc/debian_version), \$(python3 --version)\"
        useradd -d /home/user user && chown -R user /home/user
        pipenv=\"PATH=/usr/bin:/bin\"
        [ -f /etc/ssl/host-ca.pem ] && pipenv=\"\$pipenv PIP_CERT=/etc/ssl/host-ca.pem\"
        readme='\''sh install.sh && .venv/bin/mailstate validate examples/monsite.be.yaml && .venv/bin/mailstate plan examples/monsite.be.yaml && .venv/bin/mailstate apply examples/monsite.be.yaml --auto-approve'\''
        echo \"== as root (python3-venv is installed by install.sh)\"
        cd /root/ms; env -i HOME=/root \$pipenv sh -c \"\$readme\" >/tmp/root.log 2>&1 \
            || { tail -n 20 /tmp/root.log; exit 1; }
        tail -n 1 /tmp/root.log
        echo \"== as a user\"
        cd /home/user/ms; su user -s /bin/sh -c \"env -i HOME=/home/user \$pipenv sh -c \\\"\$readme\\\"\" \
            >/tmp/user.log 2>&1 || { tail -n 20 /tmp/user.log; exit 1; }
        tail -n 1 /tmp/user.log
    "
' sh "$work" "$lower" "$cert"
