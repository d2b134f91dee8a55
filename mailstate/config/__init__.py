"""What the repository says: the YAML reader with positions, the repository (the operator's
mailstate.yaml at its root, domain files below it), ownership, the rules across files, the
desired state per server, and edits of domain files."""
