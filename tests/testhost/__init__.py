"""A real test host for mailstate's integration tests (see host.py)."""

from .host import RELEASES, HostCommandError, TestHost, machine_release, missing_requirements
from .sink import SinkMessage, SmtpSink

__all__ = [
    "RELEASES",
    "HostCommandError",
    "SinkMessage",
    "SmtpSink",
    "TestHost",
    "machine_release",
    "missing_requirements",
]
