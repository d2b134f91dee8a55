"""Running the real mail tools from unit tests, with the project's skip rule.

A test that needs a tool is skipped when the tool is missing, unless MAILSTATE_REQUIRE_INTEGRATION
is "1" (CI on a machine with the Debian packages), where a missing tool is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mailstate.model.layout import Layout, Rendered

STOCK_DOVECOT = Path("/etc/dovecot")


def need(tool: str) -> str:
    """The tool's path, or skip (or fail when integration is required)."""
    path = shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/usr/bin/{tool}") if os.access(p, os.X_OK)), None)
    if path:
        return path
    if os.environ.get("MAILSTATE_REQUIRE_INTEGRATION") == "1":
        pytest.fail(f"{tool} is required (MAILSTATE_REQUIRE_INTEGRATION=1) but not installed")
    pytest.skip(f"{tool} is not installed")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def dovecot_copy(tmp: Path, rendered: Rendered, layout: Layout) -> Path:
    """A copy of the stock /etc/dovecot with the rendered fragment dropped into conf.d."""
    if not (STOCK_DOVECOT / "dovecot.conf").exists():
        need("/etc/dovecot/dovecot.conf")
    conf = tmp / "dovecot"
    shutil.copytree(STOCK_DOVECOT, conf, symlinks=True,
                    ignore=shutil.ignore_patterns("private"))
    name = Path(layout.dovecot_fragment).name
    (conf / "conf.d" / name).write_bytes(rendered.by_path()[layout.dovecot_fragment].content)
    return conf / "dovecot.conf"
