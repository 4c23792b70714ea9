"""Raw price ingestion: idempotent (re-ingesting a page changes nothing), bulk on PostgreSQL.

PostgreSQL path, in the caller's transaction:
1. the batch is de-duplicated in memory and its (pool, product, source) series are upserted into
   ``price_feed_coverage``, which locks them (in key order, so concurrent ingests cannot deadlock) and
   returns each series' ``latest_at``;
2. rows newer than their series' ``latest_at`` cannot exist yet: they are streamed with a binary
   ``COPY`` straight into ``price_observations`` (the fastest load PostgreSQL has);
3. the other rows (re-ingested pages, the "price in force" row every DescribeSpotPriceHistory page
   repeats, late agent reports) go through a temporary staging table and
   ``INSERT ... ON CONFLICT DO NOTHING``;
4. ``latest_at`` and ``covered_until`` move forward.
This is correct only if every writer goes through this module, which is the case.

Portable path (SQLite, the sandbox): a multi-row ``INSERT ... ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from spot_operator.ports import PriceObservation
from spot_operator.prices.model import RawSource

from .db import is_postgresql, rowcount
from .models import FeedCoverageRow, RawPriceRow
from .pgbinary import PG_EPOCH_US, binary_copy, copy_in
from .pools import ensure_pools, ensure_products

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
_SQLITE_CHUNK: Final = 500

I64 = npt.NDArray[np.int64]


def to_us(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: pass an aware UTC datetime")
    return (at - EPOCH) // _US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


@dataclass(frozen=True, eq=False)
class ObservationColumns:
    """A batch of raw prices as parallel arrays; ``pool``/``product`` index the key tuples."""

    pools: tuple[tuple[str, str], ...]  # (instance type, zone)
    products: tuple[str, ...]
    pool: npt.NDArray[np.int32]
    product: npt.NDArray[np.int16]
    source: npt.NDArray[np.int16]
    at_us: I64  # epoch microseconds
    price: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.at_us)

    @classmethod
    def from_observations(cls, observations: Sequence[PriceObservation]) -> ObservationColumns:
        pool_index: dict[tuple[str, str], int] = {}
        product_index: dict[str, int] = {}
        sources = {s.wire: int(s) for s in RawSource}
        n = len(observations)
        pool = np.empty(n, np.int32)
        product = np.empty(n, np.int16)
        source = np.empty(n, np.int16)
        at_us = np.empty(n, np.int64)
        price = np.empty(n, np.float64)
        for i, o in enumerate(observations):
            key = (o.pool.instance_type, o.pool.zone)
            pool[i] = pool_index.setdefault(key, len(pool_index))
            product[i] = product_index.setdefault(o.product, len(product_index))
            try:
                source[i] = sources[o.source]
            except KeyError:
                raise ValueError(f"unknown price source {o.source!r} in {o!r}") from None
            at_us[i] = to_us(o.at)
            price[i] = o.price
        return cls(tuple(pool_index), tuple(product_index), pool, product, source, at_us, price)


@dataclass(frozen=True)
class IngestResult:
    offered: int  # rows handed in
    inserted: int  # rows that were new
    series: int  # distinct (pool, product, source) in the batch


def ingest_observations(
    session: Session,
    observations: Sequence[PriceObservation],
    received_at: datetime,
    covered_until: datetime | None = None,
) -> IngestResult:
    """Store a page of prices (from the DescribeSpotPriceHistory adapter or agent reports).

    ``covered_until``: up to when the page proves its prices held (its EndTime); defaults to
    ``received_at``, right for a query that ran up to "now".
    """
    return ingest_columns(
        session, ObservationColumns.from_observations(observations), received_at, covered_until
    )


def ingest_columns(
    session: Session, batch: ObservationColumns, received_at: datetime, covered_until: datetime | None = None
) -> IngestResult:
    if len(batch) == 0:
        return IngestResult(0, 0, 0)
    if np.any(batch.price < 0) or not np.all(np.isfinite(batch.price)):
        raise ValueError("prices must be finite and >= 0")
    pool_ids = ensure_pools(session, batch.pools)
    product_ids = ensure_products(session, batch.products)
    pool_map = np.array([pool_ids[k] for k in batch.pools], np.int32)
    product_map = np.array([product_ids[k] for k in batch.products], np.int16)
    rows = _Rows(
        pool_map[batch.pool],
        product_map[batch.product],
        batch.source.astype(np.int16),
        batch.at_us,
        batch.price,
    ).unique()
    received_us = to_us(received_at)
    covered_us = to_us(covered_until or received_at)
    if is_postgresql(session):
        inserted, series = _ingest_postgresql(session, rows, received_us, covered_us)
    else:
        inserted, series = _ingest_portable(session, rows, received_us, covered_us)
    return IngestResult(len(batch), inserted, series)


# ----------------------------------------------------------------------------------------- internals


@dataclass(frozen=True, eq=False)
class _Rows:
    pool: npt.NDArray[np.int32]
    product: npt.NDArray[np.int16]
    source: npt.NDArray[np.int16]
    at_us: I64
    price: npt.NDArray[np.float64]

    def take(self, index: npt.NDArray[Any]) -> _Rows:
        return _Rows(
            self.pool[index], self.product[index], self.source[index], self.at_us[index], self.price[index]
        )

    def unique(self) -> _Rows:
        """Sorted by key, one row per key (the first price reported for it, as the table keeps)."""
        order = np.lexsort((self.at_us, self.source, self.product, self.pool))
        rows = self.take(order)
        keep = np.ones(len(order), np.bool_)
        keep[1:] = (
            (rows.pool[1:] != rows.pool[:-1])
            | (rows.product[1:] != rows.product[:-1])
            | (rows.source[1:] != rows.source[:-1])
            | (rows.at_us[1:] != rows.at_us[:-1])
        )
        return rows.take(keep)

    def series_starts(self) -> I64:
        change = np.ones(len(self.pool), np.bool_)
        change[1:] = (
            (self.pool[1:] != self.pool[:-1])
            | (self.product[1:] != self.product[:-1])
            | (self.source[1:] != self.source[:-1])
        )
        return np.flatnonzero(change)


_RAW_BINARY = np.dtype(
    [
        ("n", ">i2"),
        ("l_pool", ">i4"),
        ("pool", ">i4"),
        ("l_product", ">i4"),
        ("product", ">i2"),
        ("l_source", ">i4"),
        ("source", ">i2"),
        ("l_at", ">i4"),
        ("at", ">i8"),
        ("l_price", ">i4"),
        ("price", ">f8"),
        ("l_received", ">i4"),
        ("received", ">i8"),
    ]
)
_SERIES_BINARY = np.dtype(
    [
        ("n", ">i2"),
        ("l_pool", ">i4"),
        ("pool", ">i4"),
        ("l_product", ">i4"),
        ("product", ">i2"),
        ("l_source", ">i4"),
        ("source", ">i2"),
        ("l_latest", ">i4"),
        ("latest", ">i8"),
    ]
)


def _raw_records(rows: _Rows, received_us: int) -> npt.NDArray[np.void]:
    rec = np.empty(len(rows.pool), _RAW_BINARY)
    rec["n"] = 6
    rec["l_pool"], rec["pool"] = 4, rows.pool
    rec["l_product"], rec["product"] = 2, rows.product
    rec["l_source"], rec["source"] = 2, rows.source
    rec["l_at"], rec["at"] = 8, rows.at_us - PG_EPOCH_US
    rec["l_price"], rec["price"] = 8, rows.price
    rec["l_received"], rec["received"] = 8, received_us - PG_EPOCH_US
    return rec


_RAW_COLUMNS: Final = "pool_id, product_id, source, at, price, received_at"


def _ingest_postgresql(session: Session, rows: _Rows, received_us: int, covered_us: int) -> tuple[int, int]:
    starts = _rows_series(rows)
    n_series = len(starts)
    ends = np.append(starts[1:], len(rows.pool))
    suffix = uuid.uuid4().hex[:12]
    series_table = f"_ingest_series_{suffix}"
    stage_table = f"_ingest_rows_{suffix}"

    series = np.empty(n_series, _SERIES_BINARY)
    series["n"] = 4
    series["l_pool"], series["pool"] = 4, rows.pool[starts]
    series["l_product"], series["product"] = 2, rows.product[starts]
    series["l_source"], series["source"] = 2, rows.source[starts]
    series["l_latest"], series["latest"] = 8, rows.at_us[ends - 1] - PG_EPOCH_US
    session.execute(
        text(
            f"CREATE TEMP TABLE {series_table}"
            " (pool_id int4, product_id int2, source int2, latest timestamptz) ON COMMIT DROP"
        )
    )
    copy_in(session, series_table, "pool_id, product_id, source, latest", binary_copy(series))
    # Lock this batch's series (key order: no deadlock between concurrent ingests) and read latest_at.
    # New series get a sentinel that every row is newer than; step 4 replaces it before commit.
    stored = session.execute(
        text(
            f"""
            INSERT INTO price_feed_coverage (pool_id, product_id, source, latest_at, covered_until)
            SELECT pool_id, product_id, source, 'epoch'::timestamptz, 'epoch'::timestamptz
            FROM {series_table} ORDER BY pool_id, product_id, source
            ON CONFLICT (pool_id, product_id, source) DO UPDATE SET latest_at = price_feed_coverage.latest_at
            RETURNING pool_id, product_id, source,
                (extract(epoch FROM latest_at) * 1000000)::bigint
            """
        )
    ).all()
    latest = {(p, q, s): us for p, q, s, us in stored}
    series_latest = np.array(
        [
            latest[(int(p), int(q), int(s))]
            for p, q, s in zip(series["pool"], series["product"], series["source"], strict=True)
        ],
        np.int64,
    )
    row_latest = np.repeat(series_latest, ends - starts)
    fresh = rows.at_us > row_latest

    inserted = 0
    if fresh.any():
        copy_in(
            session,
            "price_observations",
            _RAW_COLUMNS,
            binary_copy(_raw_records(rows.take(fresh), received_us)),
        )
        inserted += int(fresh.sum())
    if not fresh.all():
        session.execute(
            text(
                f"CREATE TEMP TABLE {stage_table} (LIKE price_observations INCLUDING DEFAULTS) ON COMMIT DROP"
            )
        )
        copy_in(session, stage_table, _RAW_COLUMNS, binary_copy(_raw_records(rows.take(~fresh), received_us)))
        result = session.execute(
            text(
                f"INSERT INTO price_observations ({_RAW_COLUMNS}) SELECT {_RAW_COLUMNS} FROM {stage_table}"
                " ON CONFLICT DO NOTHING"
            )
        )
        inserted += rowcount(result)
        session.execute(text(f"DROP TABLE {stage_table}"))
    session.execute(
        text(
            f"""
            UPDATE price_feed_coverage AS c
            SET latest_at = GREATEST(c.latest_at, s.latest),
                covered_until = GREATEST(c.covered_until, :covered, s.latest)
            FROM {series_table} AS s
            WHERE c.pool_id = s.pool_id AND c.product_id = s.product_id AND c.source = s.source
            """
        ),
        {"covered": from_us(covered_us)},
    )
    session.execute(text(f"DROP TABLE {series_table}"))
    return inserted, n_series


def _rows_series(rows: _Rows) -> I64:
    return rows.series_starts()


def _ingest_portable(session: Session, rows: _Rows, received_us: int, covered_us: int) -> tuple[int, int]:
    received = from_us(received_us)
    covered = from_us(covered_us)
    insert: Callable[..., Any] = (
        sqlite.insert if session.get_bind().dialect.name == "sqlite" else postgresql.insert
    )
    inserted = 0
    table = RawPriceRow.__table__
    n = len(rows.pool)
    for start in range(0, n, _SQLITE_CHUNK):
        stop = min(start + _SQLITE_CHUNK, n)
        values = [
            {
                "pool_id": int(rows.pool[i]),
                "product_id": int(rows.product[i]),
                "source": int(rows.source[i]),
                "at": from_us(int(rows.at_us[i])),
                "price": float(rows.price[i]),
                "received_at": received,
            }
            for i in range(start, stop)
        ]
        inserted += rowcount(session.execute(insert(table).values(values).on_conflict_do_nothing()))
    starts = rows.series_starts()
    ends = np.append(starts[1:], n)
    coverage = [
        {
            "pool_id": int(rows.pool[a]),
            "product_id": int(rows.product[a]),
            "source": int(rows.source[a]),
            "latest_at": from_us(int(rows.at_us[b - 1])),
            "covered_until": max(covered, from_us(int(rows.at_us[b - 1]))),
        }
        for a, b in zip(starts, ends, strict=True)
    ]
    greatest = func.max if session.get_bind().dialect.name == "sqlite" else func.greatest
    cov = FeedCoverageRow.__table__
    for start in range(0, len(coverage), _SQLITE_CHUNK):
        stmt = insert(cov).values(coverage[start : start + _SQLITE_CHUNK])
        stmt = stmt.on_conflict_do_update(
            index_elements=[cov.c.pool_id, cov.c.product_id, cov.c.source],
            set_={
                "latest_at": greatest(cov.c.latest_at, stmt.excluded.latest_at),
                "covered_until": greatest(cov.c.covered_until, stmt.excluded.covered_until),
            },
        )
        session.execute(stmt)
    return inserted, len(coverage)
