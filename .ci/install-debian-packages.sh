#!/bin/sh
# Install the Debian packages that mailstate's integration test hosts run, the authoritative DNS
# server the DNS tests run (nsd), and the shell linter that .ci/run runs (shellcheck), as root,
# idempotent.
#
# The daemons are not configured or started on the machine itself: Postfix gets "No
# configuration", and a policy-rc.d (created only if missing) stops apt from starting services.
# Each test host then runs its own copies inside namespaces (tests/testhost).
set -eu

PACKAGES="postfix postfix-lmdb dovecot-core dovecot-imapd dovecot-lmtpd dovecot-sieve dovecot-pop3d postgrey
openssh-server openssh-client swaks iproute2 util-linux procps openssl cpio mmdebstrap
shellcheck nsd"

if [ "$(id -u)" != 0 ]; then
    echo "$0: must run as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive

echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections

if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# Installed by mailstate CI: do not start services from apt.\nexit 101\n' \
        >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
fi

missing=""
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing="$missing $pkg"
done
if [ -z "$missing" ]; then
    echo "all packages already installed"
    exit 0
fi
echo "installing:$missing"

apt-get update -q
# shellcheck disable=SC2086  # the package list is meant to be split
apt-get install -y -q --no-install-recommends $PACKAGES
