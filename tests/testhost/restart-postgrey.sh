#!/bin/sh
# testhost-restart-postgrey: restart postgrey on a mailstate test host.
#
# A test host has no systemd, and /etc/init.d/postgrey would start a second postgrey beside the
# supervised one. This asks the host's init (PID 1) to stop postgrey and start it again with the
# options now in /etc/default/postgrey (POSTGREY_OPTS, POSTGREY_TEXT), and returns only once the
# new postgrey listens on its socket. Exit status 1 (with the log's tail) if it did not start.
set -eu
reply=/run/testhost/reply.$$
rm -f "$reply"
echo "restart-postgrey $$" >/run/testhost/control
i=0
while [ ! -s "$reply" ]; do
    i=$((i + 1))
    if [ "$i" -gt 600 ]; then
        echo "testhost-restart-postgrey: no answer from init after 30 s" >&2
        exit 1
    fi
    sleep 0.05
done
state=$(cat "$reply")
rm -f "$reply"
if [ "$state" != running ]; then
    echo "testhost-restart-postgrey: postgrey $state; last lines of /var/log/postgrey.log:" >&2
    tail -n 20 /var/log/postgrey.log >&2
    exit 1
fi
