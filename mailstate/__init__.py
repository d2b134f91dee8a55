"""mailstate: hosted e-mail as code, reconciled onto Postfix, Dovecot and postgrey."""

__version__ = "0.1.0"
