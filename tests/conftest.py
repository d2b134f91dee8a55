"""Tests run against mailstate as it is installed.

pytest puts the repository root first on sys.path (to import `tests`), which would make
`import mailstate` find the source tree instead of the installed wheel, hiding a file missing
from the wheel. So the root moves to the end, and mailstate is imported here once, from
wherever it is installed (an editable install maps back to the source tree, as it should).
With MAILSTATE_TEST_INSTALLED=1 (CI) a mailstate taken from the source tree is an error.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT] + [str(ROOT)]

import mailstate  # noqa: E402

# The plan cache (mailstate.guards.plan_cache) of this test run, shared by its child processes: left
# on, as users have it, but never the user's own.
_CACHE = tempfile.mkdtemp(prefix="mailstate-test-cache-")
os.environ["MAILSTATE_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)

if os.environ.get("MAILSTATE_TEST_INSTALLED") == "1" and Path(mailstate.__file__).resolve(
).is_relative_to(ROOT):
    raise SystemExit(f"MAILSTATE_TEST_INSTALLED=1 but mailstate was imported from the source "
                     f"tree ({mailstate.__file__}); install the wheel into this environment")
