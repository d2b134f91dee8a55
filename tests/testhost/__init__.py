"""A real test host for mailstate's integration tests (see host.py)."""

from .host import HostCommandError, TestHost, missing_requirements
from .sink import SinkMessage, SmtpSink

__all__ = ["HostCommandError", "SinkMessage", "SmtpSink", "TestHost", "missing_requirements"]
