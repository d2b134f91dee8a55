"""mailstate: hosted e-mail as code, reconciled onto Postfix, Dovecot and postgrey.

The library's face: ``Manager`` (validate, plan, apply, roll back, unlock a repository's
servers; ``mailstate.manager``), what needs no server (``mailstate.offline``: validate,
explain, passwords, saved plans and their views) and ``import_server`` (``mailstate.importer``).
"""

__version__ = "0.1.0"

from mailstate import offline
from mailstate.fleet import Fleet, Invalid, SelectionError, ServerRun
from mailstate.importer import Imported, ImportRefused, import_server
from mailstate.manager import Manager

__all__ = ["Fleet", "ImportRefused", "Imported", "Invalid", "Manager", "SelectionError",
           "ServerRun", "__version__", "import_server", "offline"]
