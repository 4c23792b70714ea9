"""Alembic environment of the price-history schema (run through :mod:`spot_operator.storage.migrate`)."""
