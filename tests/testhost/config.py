"""Base configuration of a test host: what a freshly installed Debian mail server would have.

Only settings the test host itself needs are written here. Everything mailstate manages (virtual
domains, LMTP, postgrey hooks, passdb/userdb, quota, sieve) is deliberately absent, so that the
integration tests prove mailstate adds it.
"""

from __future__ import annotations

from dataclasses import dataclass

SMTP_SINK_PORT = 2525
VMAIL_UID = 5000
VMAIL_GID = 5000
POSTGREY_DEFAULT_OPTS = "--inet=127.0.0.1:10023"

# Host path -> how its private copy is made. "copy": copy of the machine's path (cp -a, keeps
# owners and modes); "empty": an empty directory; "home": an empty home from /etc/skel;
# "file": a file written by the test host.
# Each entry is bind-mounted over the standard path inside the host's mount namespace.
PRIVATE_PATHS: dict[str, str] = {
    "/etc/postfix": "copy",
    "/etc/dovecot": "copy",
    "/etc/ssh": "copy",
    "/etc/postgrey": "copy",
    "/etc/default": "copy",
    "/var/spool/postfix": "copy",
    "/var/lib/postfix": "copy",
    "/var/lib/dovecot": "copy",
    "/var/lib/postgrey": "copy",
    "/var/mail": "copy",
    "/var/log": "empty",
    "/var/vmail": "empty",
    "/var/lib/mailstate": "empty",
    # Private so that a helper script can live at a standard path inside the host only.
    "/usr/local/sbin": "empty",
    # root's own home: the runner's dotfiles (PATH, tools) must not leak into SSH sessions.
    "/root": "home",
    "/etc/hosts": "file",
    "/etc/resolv.conf": "file",
    "/etc/hostname": "file",
    "/etc/mailname": "file",
    "/etc/aliases": "file",
    "/etc/aliases.db": "file",
}


@dataclass(frozen=True)
class Addresses:
    """The addresses of one host's /24 on its veth pair."""

    subnet_index: int

    @property
    def prefix(self) -> str:
        return f"10.77.{self.subnet_index}"

    @property
    def runner_ip(self) -> str:
        return f"{self.prefix}.1"

    @property
    def host_ip(self) -> str:
        return f"{self.prefix}.2"

    @property
    def runner_ip2(self) -> str:
        return f"{self.prefix}.3"


def main_cf(fqdn: str, relay_ip: str) -> str:
    """A minimal main.cf, as an operator would have after installing Postfix as an MX.

    The relayhost points at the runner's SMTP sink: nothing resolves inside a host, and mail for
    outside domains (forwards, vacation replies, bounces) must be caught by the tests.
    """
    domain = fqdn.split(".", 1)[1] if "." in fqdn else fqdn
    return f"""\
# Base configuration of a mailstate test host (a freshly installed Debian mail server).
smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
biff = no
append_dot_mydomain = no
readme_directory = no
compatibility_level = 3.6
myhostname = {fqdn}
mydomain = {domain}
myorigin = /etc/mailname
mydestination = localhost
mynetworks = 127.0.0.0/8
inet_interfaces = all
inet_protocols = ipv4
relayhost = [{relay_ip}]:{SMTP_SINK_PORT}
alias_maps = hash:/etc/aliases
alias_database = hash:/etc/aliases
recipient_delimiter = +
mailbox_size_limit = 0
smtputf8_enable = no
maillog_file = /var/log/postfix.log
"""


# Sorts after the stock 10-ssl.conf (whose `ssl = yes` would win over an earlier fragment) and
# before mailstate's 99-mailstate.conf.
DOVECOT_FRAGMENT_NAME = "50-testhost.conf"
DOVECOT_EMPTY_PASSWD = "/etc/dovecot/testhost-nobody.passwd"
DOVECOT_FRAGMENT = f"""\
# Test host only: no syslog inside a test host, and IMAP LOGIN from the runner without TLS.
log_path = /var/log/dovecot.log
ssl = no
disable_plaintext_auth = no

# The PAM passdb is switched off (auth-system.conf.ext, see 10-auth.conf) and Dovecot's auth
# refuses to start without any passdb/userdb, so the host would not even greet IMAP clients
# until mailstate adds its own. These find nobody: lookups go on to mailstate's.
passdb {{
  driver = passwd-file
  args = {DOVECOT_EMPTY_PASSWD}
}}
userdb {{
  driver = passwd-file
  args = {DOVECOT_EMPTY_PASSWD}
}}
"""

# The same in Dovecot 2.4's syntax (named passdb/userdb blocks; the name must differ from
# mailstate's own `passdb passwd-file`, or the two blocks would merge).
DOVECOT_FRAGMENT_24 = f"""\
# Test host only: no syslog inside a test host, and IMAP LOGIN from the runner without TLS.
log_path = /var/log/dovecot.log
ssl = no
auth_allow_cleartext = yes

# The PAM passdb is switched off (auth-system.conf.ext, see 10-auth.conf); these find nobody.
passdb testhost {{
  driver = passwd-file
  passwd_file_path = {DOVECOT_EMPTY_PASSWD}
}}
userdb testhost {{
  driver = passwd-file
  passwd_file_path = {DOVECOT_EMPTY_PASSWD}
}}
"""

# Read first: the stock sshd_config starts with this Include and sshd keeps the first value.
SSHD_FRAGMENT_NAME = "10-testhost.conf"
SSHD_FRAGMENT = """\
# Test host only: root logs in with the test suite's generated key, nothing else.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile /etc/ssh/authorized_keys/%u
PidFile /run/sshd.pid
"""


def hosts_file(fqdn: str, addrs: Addresses) -> str:
    """/etc/hosts: the runner's addresses get names so that Postfix sees a client_name."""
    short = fqdn.split(".", 1)[0]
    return (
        "127.0.0.1\tlocalhost\n"
        f"{addrs.host_ip}\t{fqdn} {short}\n"
        f"{addrs.runner_ip}\trunner.test\n"
        f"{addrs.runner_ip2}\trunner2.test\n"
    )


# Nothing resolves inside a host: a local address fails fast and keeps every query in the netns.
RESOLV_CONF = "nameserver 127.0.0.1\n"
ALIASES = "# See man 5 aliases for format\npostmaster:    root\n"
