"""Adopting a server Virtualmin configured: its files read, converted into domain files."""
