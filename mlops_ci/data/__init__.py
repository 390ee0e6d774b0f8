"""Data access: DVC-tracked (or git-tracked) files at a git revision, read as Arrow tables."""
