"""Price history and operations history in SQL (PostgreSQL; SQLite for the sandbox and simulator).

- ``models``, ``types``, ``migrations`` (Alembic, run by ``migrate.upgrade_to_head``): the schema;
- ``db``: engines and sessions;
- ``ingest``: raw prices in bulk, idempotently; ``cleaning_job``: the clean 5-minute series
  (the algorithm itself is pure, in ``spot_operator.prices.cleaning``);
- ``series``, ``history``, ``savings``, ``model_registry``, ``pools``: repositories taking the caller's
  session and returning frozen snapshots;
- ``retention``: batched deletes of old rows;
- ``buffer`` and ``store``: ``SqlPriceStore``, the ``ports.PriceStore`` the operator uses, which keeps
  working (buffering) while the database is away.
"""
