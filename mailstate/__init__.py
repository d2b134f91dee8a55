"""mailstate: hosted e-mail as code, reconciled onto Postfix, Dovecot and postgrey.

The library's face is ``Manager`` (validate, plan, apply, roll back a repository's servers)
and ``import_server``; see ``mailstate.manager``.
"""

__version__ = "0.1.0"

from .manager import Fleet, Invalid, Manager, ServerRun, UsageError, import_server

__all__ = ["Fleet", "Invalid", "Manager", "ServerRun", "UsageError", "__version__",
           "import_server"]
