"""Retention: raw prices kept ``raw_retention_days``, the clean series ``clean_retention_days``.

Rows go in batches, each its own short transaction, so no lock is held for long and the operator's
writes interleave: on PostgreSQL ``DELETE ... WHERE ctid = ANY(ARRAY(SELECT ctid ... LIMIT n))`` (the
time condition is served by the BRIN index on the time column), on SQLite the same with ``rowid``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session, sessionmaker

from .columns import UtcDateTime
from .db import is_postgresql, rowcount

log = logging.getLogger(__name__)

_TABLES = {"price_observations": "at", "clean_prices": "bucket"}


@dataclass(frozen=True)
class PurgeResult:
    table: str
    cutoff: datetime
    deleted: int
    batches: int


def purge(
    factory: sessionmaker[Session],
    table: str,
    cutoff: datetime,
    batch_size: int = 10_000,
    max_batches: int | None = None,
) -> PurgeResult:
    """Delete rows of ``table`` older than ``cutoff``, ``batch_size`` per transaction."""
    column = _TABLES.get(table)
    if column is None:
        raise ValueError(f"no retention for table {table!r}: expected one of {sorted(_TABLES)}")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    deleted = batches = 0
    while max_batches is None or batches < max_batches:
        with factory.begin() as session:
            row_id = "ctid" if is_postgresql(session) else "rowid"
            if row_id == "ctid":
                sql = (
                    f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
                    f"SELECT ctid FROM {table} WHERE {column} < :cutoff LIMIT :n))"
                )
            else:
                sql = (
                    f"DELETE FROM {table} WHERE rowid IN ("
                    f"SELECT rowid FROM {table} WHERE {column} < :cutoff LIMIT :n)"
                )
            stmt = text(sql).bindparams(bindparam("cutoff", type_=UtcDateTime()))
            count = rowcount(session.execute(stmt, {"cutoff": cutoff, "n": batch_size}))
        batches += 1
        deleted += int(count)
        if count < batch_size:
            break
    return PurgeResult(table, cutoff, deleted, batches)


def apply_retention(
    factory: sessionmaker[Session], now: datetime, raw_days: int, clean_days: int, batch_size: int = 10_000
) -> list[PurgeResult]:
    return [
        purge(factory, "price_observations", now - timedelta(days=raw_days), batch_size),
        purge(factory, "clean_prices", now - timedelta(days=clean_days), batch_size),
    ]


async def run_retention(
    factory: sessionmaker[Session],
    raw_days: int,
    clean_days: int,
    interval_seconds: float = 3600.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    stop: asyncio.Event | None = None,
) -> None:
    """Apply retention every ``interval_seconds`` until ``stop`` is set; failures are logged and retried."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            results = await asyncio.to_thread(apply_retention, factory, clock(), raw_days, clean_days)
            for r in results:
                if r.deleted:
                    log.info("retention: %d rows older than %s deleted from %s", r.deleted, r.cutoff, r.table)
        except Exception:
            log.exception("retention failed; retrying in %.0f s", interval_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_seconds)
