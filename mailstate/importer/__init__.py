"""Repositories from live servers: mailstate's own files, or a server Virtualmin configured,
read back into domain files (one face, ``import_server``, for both sources)."""

from mailstate.importer.sources import SOURCES, Imported, ImportRefused, import_server

__all__ = ["SOURCES", "ImportRefused", "Imported", "import_server"]
