"""Alembic revisions, one per schema change, a single head (checked by a test)."""
