"""Validation problems for CI: plain ``file:line:col`` lines, or GitHub workflow commands.

``--format github`` prints each problem as ``::error file=F,line=L,col=C::message`` so that
GitHub Actions shows it inline on the pull request's diff; ``--format plain`` prints the same
``file:line:col: severity: message`` lines as the default, without colour, on standard output
(what editors, pre-commit and GitLab's log read). A message comes from a file written by a
customer: GitHub's escaping (``%``, CR, LF, and ``:``/``,`` in properties) keeps it from
ending the command early or forging another one.
"""

from __future__ import annotations

from mailstate.model.diagnostics import Issue


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def github(issue: Issue) -> str:
    command = "error" if issue.severity == "error" else "warning"
    props = [f"file={_property(issue.path)}"]
    if issue.line is not None:
        props.append(f"line={issue.line}")
        if issue.column is not None:
            props.append(f"col={issue.column}")
    props.append(f"title={_property('mailstate ' + issue.severity)}")
    return f"::{command} {','.join(props)}::{_data(issue.message)}"


def plain(issue: Issue) -> str:
    return str(issue)


FORMATS = {"github": github, "plain": plain}
