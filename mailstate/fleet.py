"""A run over a repository's servers, as the library returns it: one ``ServerRun`` per server
(what was read, planned and done, or its error) gathered in a ``Fleet``; and the two errors a
caller gets before anything runs (``Invalid`` files, a ``SelectionError``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailstate.model.diagnostics import Issue
from mailstate.plan import Plan

if TYPE_CHECKING:
    from mailstate.apply import Applied
    from mailstate.engine.prepare import Prepared


class Invalid(Exception):
    """The repository's files are not valid; ``issues`` says where and why (nothing ran)."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        errors = sum(i.severity == "error" for i in issues)
        self.summary = f"{errors} error{'s' if errors != 1 else ''}; nothing was changed."
        super().__init__("\n".join([*(str(i) for i in issues if i.severity == "error"),
                                     self.summary]))


class SelectionError(ValueError):
    """A server or target named by the caller does not fit the repository."""


@dataclass
class ServerRun:
    """One server in a run: what was read and planned, and what happened to it."""

    name: str
    prepared: Prepared | None = None
    error: str | None = None  # could not be read, planned, applied or rolled back
    applied: Applied | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Fleet:
    """The servers of one run, in name order. Close it (or use ``with``) to end connections."""

    servers: list[ServerRun] = field(default_factory=list)

    @property
    def plan(self) -> Plan:
        """The change plan of every server that could be read."""
        return Plan([s.prepared.plan for s in self.servers if s.prepared is not None])

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.servers)

    @property
    def errors(self) -> dict[str, str]:
        return {s.name: s.error for s in self.servers if s.error is not None}

    def exit_code(self, detailed: bool = False) -> int:
        """Terraform's: 1 on any error; else, if `detailed`, 2 when there are changes; else 0."""
        if not self.ok:
            return 1
        return 2 if detailed and self.plan.has_changes else 0

    def close(self) -> None:
        for server in self.servers:
            if server.prepared is not None:
                server.prepared.transport.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


