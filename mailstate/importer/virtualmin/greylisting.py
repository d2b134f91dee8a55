"""Virtualmin's greylisting (postgrey) -> mailstate's server and per-domain settings.

Virtualmin turns greylisting on with ``check_policy_service`` in Postfix's recipient
restrictions and opts a domain out by listing it in postgrey's recipient whitelist; postgrey's
own options (delay, max age, auto-whitelisting) are in ``/etc/default/postgrey``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mailstate.importer.virtualmin.files import VirtualminFiles
from mailstate.model.values import check_address, check_client

_OPTS = re.compile(r"--(delay|max-age|auto-whitelist-clients)[= ](\d+)", re.ASCII)
POSTGREY_DEBIAN_DELAY = 300  # postgrey's own default, when /etc/default/postgrey says nothing


def greylisting(vm: VirtualminFiles, hosted: set[str], alias_of: dict[str, tuple[str, bool]],
                warn: Callable[[str | None, str], None]) -> tuple[dict[str, object], set[str]]:
    """(the server's `greylisting:` mapping, the hosted domains that opted out)."""
    restrictions = vm.postconf.get("smtpd_recipient_restrictions", "")
    server: dict[str, object] = {"enabled": "check_policy_service" in restrictions}
    opts = dict(_OPTS.findall(vm.text("/etc/default/postgrey")))
    server["delay"] = f"{opts.get('delay', POSTGREY_DEBIAN_DELAY)}s"
    if "max-age" in opts:
        server["max_age"] = f"{max(int(opts['max-age']), 1)}d"
    if "auto-whitelist-clients" in opts:
        server["auto_whitelist_clients"] = int(opts["auto-whitelist-clients"])
    off: set[str] = set()
    recipients: list[str] = []
    for path in ("/etc/postgrey/whitelist_recipients",
                 "/etc/postgrey/whitelist_recipients.local"):
        for number, line in enumerate(vm.text(path).splitlines(), 1):
            entry = line.strip().lower()
            if not entry or entry.startswith("#"):
                continue
            domain = alias_of.get(entry, (entry, False))[0]
            if domain in hosted:
                off.add(domain)
            elif "@" in entry and entry.rpartition("@")[2] in {*hosted, *alias_of}:
                recipients.append(check_address(entry))
            elif path.endswith(".local"):
                warn(None, f"{path}:{number}: {entry} is not carried (mailstate "
                          "rewrites this file with hosted domains and addresses only)")
    if recipients:
        server["whitelist_recipients"] = sorted(set(recipients))
    clients = []
    path = "/etc/postgrey/whitelist_clients.local"
    for number, line in enumerate(vm.text(path).splitlines(), 1):
        entry = line.strip()
        if entry and not entry.startswith("#"):
            try:
                clients.append(check_client(entry))
            except ValueError:
                warn(None, f"{path}:{number}: {entry} is not carried (mailstate "
                          "writes IP addresses, networks and host names only)")
    if clients:
        server["whitelist_clients"] = sorted(set(clients))
    return server, off

