"""Reaching a server: transports (a local directory, SSH) and the one read of its live files."""
