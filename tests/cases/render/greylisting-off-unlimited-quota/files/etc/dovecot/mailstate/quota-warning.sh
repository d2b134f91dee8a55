# managed by mailstate: quota warning script (run by Dovecot); edits here are overwritten by the next apply
text=/etc/dovecot/mailstate/quota-warning.txt
mailboxes=/etc/postfix/mailstate/virtual_mailboxes
# (mailstate puts its header and the two paths, text= and mailboxes=, in front of this.)
# Dovecot runs this (service quota-warning) when a mailbox crosses a threshold of its quota:
#   quota-warning.sh PERCENT LOGIN
# It delivers the warning mail of $text straight into the mailbox with dovecot-lda (no
# SMTP: nothing leaves the server). Anyone who can reach Dovecot's socket could call it, so it
# sends only what is true: the mailbox's own usage must have reached PERCENT.
set -eu
text=${text:?}
mailboxes=${mailboxes:?}

percent=${1:-}
user=${2:-}
case $percent in '' | *[!0-9]*) echo "quota-warning: bad percent '$percent'" >&2; exit 64 ;; esac
case $user in '' | *[!a-z0-9._-]*) echo "quota-warning: bad login '$user'" >&2; exit 64 ;; esac

# STORAGE Value and Limit in KiB (doveadm's flow format: key=value, one line per resource).
usage=$(doveadm -f flow quota get -u "$user" |
    sed -n 's/.*Type=STORAGE Value=\([0-9]*\) Limit=\([0-9]*\) .*/\1 \2/p')
used=${usage% *}
limit=${usage#* }
if [ -z "$usage" ] || [ "$limit" -eq 0 ] || [ $((used * 100)) -lt $((limit * percent)) ]; then
    exit 0  # no limit, or not (or no longer) over the threshold: nothing to tell
fi

# The mailbox's primary address: its line in Postfix's map (login@domain domain/login/Maildir/).
address=$(awk -v l="$user" 'substr($1, 1, length(l) + 1) == l "@" &&
    substr($2, length($2) - length(l) - 9) == "/" l "/Maildir/" { print $1; exit }' \
    "$mailboxes")
[ -n "$address" ] || address=$user
domain=${address#*@}

human() {  # KiB -> "1.5 MiB"
    awk -v k="$1" 'BEGIN { if (k >= 1048576) printf "%.1f GiB", k / 1048576;
        else if (k >= 1024) printf "%.1f MiB", k / 1024; else printf "%d KiB", k }'
}
used_h=$(human "$used")
quota_h=$(human "$limit")

{
    printf 'Date: %s\n' "$(LC_ALL=C date -R)"
    printf 'Message-ID: <quota-warning.%s.%s.%s@%s>\n' "$(date +%s)" "$$" "$percent" "$domain"
    sed -e '1d' \
        -e "s|{percent}|$percent|g; s|=7Bpercent=7D|$percent|g" \
        -e "s|{address}|$address|g; s|{domain}|$domain|g" \
        -e "s|{used}|$used_h|g; s|{quota}|$quota_h|g" "$text"
} | /usr/lib/dovecot/dovecot-lda -d "$user"
