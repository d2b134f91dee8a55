"""Adopting servers that another tool configured: their files read back into domain files."""
