"""The quota warning mail: Dovecot settings, the server's script, and its text file.

Dovecot runs ``quota-warning.sh PERCENT LOGIN`` (service quota-warning) when a mailbox crosses
a threshold; the script fills in the text file and delivers it into the mailbox. The text file
is the part of the state that the server holds: its first line names the thresholds, then the
mail's headers and the operator's text, so ``read`` gives back the state ``render`` wrote.
"""

from __future__ import annotations

import email.charset
import email.header
import re

from mailstate.files.formats import lines
from mailstate.model.layout import Facts, Layout, RenderedFile
from mailstate.model.state import QuotaWarnings

SCRIPT_MODE = 0o755
_THRESHOLDS = re.compile(r"quota warning mail, thresholds ([0-9 ]*);")
_Q = email.charset.Charset("utf-8")
_Q.header_encoding = email.charset.QP


def text_path(layout: Layout) -> str:
    return f"{layout.dovecot_dir}/quota-warning.txt"  # also in paths.managed_paths


def script_path(layout: Layout) -> str:
    return f"{layout.dovecot_dir}/quota-warning.sh"  # also in paths.managed_paths


def _subject(subject: str) -> str:
    """The Subject header's value: as written when ASCII, else RFC 2047 Q-encoded, where
    ``{percent}`` becomes ``=7Bpercent=7D`` (the script fills in both forms)."""
    if subject.isascii() and "=?" not in subject:
        return subject
    encoded = email.header.Header(subject, _Q, maxlinelen=10_000).encode()
    if "{percent}" in subject and "=7Bpercent=7D" not in encoded:
        raise ValueError("the quota warning subject cannot name {percent} here; move it")
    return encoded


def text(warnings: QuotaWarnings) -> bytes:
    head = lines.header("quota warning mail, thresholds "
                        + " ".join(str(t) for t in warnings.thresholds))
    return "\n".join([
        head, f"Subject: {_subject(warnings.subject)}",
        "From: Postmaster <postmaster@{domain}>", "To: <{address}>",
        "Auto-Submitted: auto-generated", "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", "",
        warnings.message]).encode("utf-8")


def read(data: bytes) -> QuotaWarnings:
    """The state a text file describes (ValueError if it is not one mailstate wrote)."""
    head, sep, body = data.decode("utf-8").partition("\n\n")
    first, *headers = head.split("\n")
    found = _THRESHOLDS.search(first)
    subject = next((h[len("Subject: "):] for h in headers if h.startswith("Subject: ")), None)
    if not sep or found is None or subject is None:
        raise ValueError("not a mailstate quota warning text")
    decoded = str(email.header.make_header(email.header.decode_header(subject)))
    return QuotaWarnings(thresholds=tuple(int(t) for t in found[1].split()),
                         subject=decoded, message=body)


def settings(warnings: QuotaWarnings, layout: Layout, facts: Facts) -> str:
    """The Dovecot settings of the warnings (empty without thresholds)."""
    if not warnings.thresholds:
        return ""
    service = (f"service quota-warning {{\n  executable = script /bin/sh {script_path(layout)}\n"
               "  user = root\n"
               "  # Any local process may ask: the script sends only a true warning.\n"
               "  unix_listener quota-warning {\n    mode = 0666\n  }\n}\n")
    if facts.dovecot24:
        blocks = "".join(
            f"  quota_warning warn-{t} {{\n    quota_storage_percentage = {t}\n"
            f"    execute quota-warning {{\n      args = {t} %{{user}}\n    }}\n  }}\n"
            for t in warnings.thresholds)
        return f'quota "User quota" {{\n{blocks}}}\n{service}'
    rows = "".join(
        f"  quota_warning{'' if i == 0 else i + 1} = storage={t}%% quota-warning {t} %u\n"
        for i, t in enumerate(warnings.thresholds))
    return f"plugin {{\n{rows}}}\n{service}"


def files(warnings: QuotaWarnings, layout: Layout) -> list[RenderedFile]:
    """The text file and the script (none without thresholds)."""
    if not warnings.thresholds:
        return []
    from mailstate.files.render import fill

    script = "".join([
        lines.header("quota warning script (run by Dovecot)"), "\n",
        f"text={text_path(layout)}\n", f"mailboxes={layout.postfix_dir}/virtual_mailboxes\n",
    ]).encode("utf-8") + fill("quota-warning.sh", {})
    return [RenderedFile(path=text_path(layout), content=text(warnings), service="dovecot"),
            RenderedFile(path=script_path(layout), content=script, mode=SCRIPT_MODE,
                         service="dovecot")]
