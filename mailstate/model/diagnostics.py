"""What a run found wrong in the files: one ``Issue`` per problem, with where it is.

Apart from the YAML reader so that a run that needs no file read (a plan from the plan cache)
still reports its warnings without loading the reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True, order=True)
class Issue:
    """One problem found in one file, with where it is and what to do."""

    path: str
    line: int | None
    column: int | None
    message: str
    severity: str = "error"
    # Issues of one kind that repeat (a warning for each mailbox of an account) share a group,
    # which names what they have in common; `collapse` shows them as one line with a count.
    group: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {self.severity}: {self.message}"
        # One issue, one line: a newline or control character from the input is shown escaped,
        # so that no file content can forge extra lines in CI output.
        return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def collapse(issues: list[Issue]) -> list[Issue]:
    """Each group of more than one issue as its first issue, with the count of the others.

    Order is kept (the first of a group stands where it was); ungrouped issues are unchanged.
    """
    sizes: dict[str, int] = {}
    for issue in issues:
        if issue.group is not None:
            sizes[issue.group] = sizes.get(issue.group, 0) + 1
    out: list[Issue] = []
    shown: set[str] = set()
    for issue in issues:
        group = issue.group
        if group is None or sizes[group] == 1:
            out.append(issue)
        elif group not in shown:
            shown.add(group)
            more = sizes[group] - 1
            out.append(replace(issue, message=f"{issue.message}; and {more} more {group} "
                               "(-v lists each)"))
    return out


class Problems(Exception):
    """Raised with every issue of a run, so that all are reported at once."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("\n".join(map(str, issues)))
        self.issues = issues
