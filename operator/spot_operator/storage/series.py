"""Reading the clean series, and the on-demand prices savings are measured against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from spot_operator.planning.model import Pool
from spot_operator.ports import PricePoint
from spot_operator.prices.zones import region_of

from . import pgbinary
from .db import is_postgresql
from .ingest import EPOCH
from .models import CleanPriceRow, OnDemandPriceRow
from .pools import DEFAULT_PRODUCT, ensure_products, find_pools, pool_ids, product_ids

_END_OF_TIME: Final = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, eq=False)
class PriceArrays:
    """A clean series as arrays: bucket starts (epoch seconds) and prices, oldest first."""

    times: npt.NDArray[np.float64]
    prices: npt.NDArray[np.float64]
    confidence: npt.NDArray[np.float64]


def _product_id(session: Session, product: str) -> int | None:
    return product_ids(session, [product]).get(product)


def recent_prices(
    session: Session, pools: Sequence[Pool], since: datetime, product: str = DEFAULT_PRODUCT
) -> dict[Pool, tuple[PricePoint, ...]]:
    """The clean points of these pools from ``since`` on; pools without any are absent."""
    by_id = _ids(session, pools)
    product_id = _product_id(session, product)
    if not by_id or product_id is None:
        return {}
    stmt = (
        select(
            CleanPriceRow.pool_id,
            CleanPriceRow.bucket,
            CleanPriceRow.price,
            CleanPriceRow.method,
            CleanPriceRow.confidence,
        )
        .where(
            CleanPriceRow.pool_id.in_(sorted(by_id)),
            CleanPriceRow.product_id == product_id,
            CleanPriceRow.bucket >= since,
        )
        .order_by(CleanPriceRow.pool_id, CleanPriceRow.bucket)
    )
    out: dict[Pool, list[PricePoint]] = {}
    for pool_id, bucket, price, method, confidence in session.execute(stmt):
        out.setdefault(by_id[pool_id], []).append(PricePoint(bucket, price, method, confidence))
    return {p: tuple(points) for p, points in out.items()}


def recent_price_arrays(
    session: Session,
    pools: Sequence[Pool],
    since: datetime,
    until: datetime | None = None,
    product: str = DEFAULT_PRODUCT,
) -> dict[Pool, PriceArrays]:
    """:func:`recent_prices` as arrays, for feature building and savings (no object per point)."""
    by_id = _ids(session, pools)
    product_id = _product_id(session, product)
    if not by_id or product_id is None:
        return {}
    if is_postgresql(session):
        return _arrays_postgresql(session, by_id, product_id, since, until)
    return _arrays_portable(session, by_id, product_id, since, until)


def _ids(session: Session, pools: Sequence[Pool]) -> dict[int, Pool]:
    """The stored ids of these pools (unknown ones are absent)."""
    by_key = {(p.instance_type, p.zone): p for p in pools}
    return {i: by_key[k] for k, i in pool_ids(session, by_key).items()}


def _arrays_portable(
    session: Session, by_id: Mapping[int, Pool], product_id: int, since: datetime, until: datetime | None
) -> dict[Pool, PriceArrays]:
    stmt = select(
        CleanPriceRow.pool_id, CleanPriceRow.bucket, CleanPriceRow.price, CleanPriceRow.confidence
    ).where(
        CleanPriceRow.pool_id.in_(sorted(by_id)),
        CleanPriceRow.product_id == product_id,
        CleanPriceRow.bucket >= since,
    )
    if until is not None:
        stmt = stmt.where(CleanPriceRow.bucket < until)
    rows: list[tuple[Any, ...]] = [
        tuple(r) for r in session.execute(stmt.order_by(CleanPriceRow.pool_id, CleanPriceRow.bucket))
    ]
    if not rows:
        return {}
    pool_col = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    times = np.fromiter(((r[1] - EPOCH).total_seconds() for r in rows), np.float64, len(rows))
    prices = np.fromiter((r[2] for r in rows), np.float64, len(rows))
    confidence = np.fromiter((r[3] for r in rows), np.float64, len(rows))
    starts = np.flatnonzero(np.r_[True, pool_col[1:] != pool_col[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    return {
        by_id[int(pool_col[a])]: PriceArrays(times[a:b], prices[a:b], confidence[a:b])
        for a, b in zip(starts, ends, strict=True)
    }


# One row per pool with its series packed into bytea (big-endian 8-byte values), streamed out as a
# binary COPY: each pool is an ordered index-only range scan of the primary key (no sort, nothing
# spilled to disk) and the client makes three numpy views per pool instead of a tuple per point.
# string_agg keeps the order of the sorted subquery; the reader checks it anyway.
SERIES_PACKED_SQL: Final = """
SELECT k.pool_id, s.buckets, s.prices, s.confidence
FROM unnest(%(pools)s::int4[]) AS k(pool_id)
CROSS JOIN LATERAL (
    SELECT string_agg(timestamptz_send(c.bucket), '') AS buckets,
           string_agg(float8send(c.price), '') AS prices,
           string_agg(float8send(c.confidence), '') AS confidence
    FROM (
        SELECT bucket, price, confidence FROM clean_prices
        WHERE pool_id = k.pool_id AND product_id = %(product)s AND bucket >= %(since)s AND bucket < %(until)s
        ORDER BY bucket
    ) AS c
) AS s
WHERE s.buckets IS NOT NULL
"""


def _arrays_postgresql(
    session: Session, by_id: Mapping[int, Pool], product_id: int, since: datetime, until: datetime | None
) -> dict[Pool, PriceArrays]:
    params = {"pools": sorted(by_id), "product": product_id, "since": since, "until": until or _END_OF_TIME}
    # The planner's cost for 60 pools' week passes jit_above_cost, and compiling costs more (~8 ms)
    # than it saves; LOCAL ends with the transaction.
    session.execute(text("SET LOCAL jit = off"))
    query = pgbinary.mogrify(session, SERIES_PACKED_SQL, params)
    out: dict[Pool, PriceArrays] = {}
    for pool_id, (buckets, prices, confidence) in pgbinary.packed_rows(
        pgbinary.copy_out(session, query), 3
    ).items():
        series = PriceArrays(
            pgbinary.as_epoch_seconds(buckets), pgbinary.as_float64(prices), pgbinary.as_float64(confidence)
        )
        out[by_id[pool_id]] = in_time_order(series)
    return out


def in_time_order(series: PriceArrays) -> PriceArrays:
    """The series sorted by time (as it nearly always comes already: then it is returned as is)."""
    times = series.times
    if len(times) < 2 or bool((np.diff(times) > 0).all()):
        return series
    order = np.argsort(times, kind="stable")
    return PriceArrays(times[order], series.prices[order], series.confidence[order])


def latest_prices(
    session: Session, pools: Sequence[Pool], product: str = DEFAULT_PRODUCT
) -> dict[Pool, float]:
    """The newest clean price of each pool; pools without any are absent."""
    records = find_pools(session, pools)
    product_id = _product_id(session, product)
    if not records or product_id is None:
        return {}
    out: dict[Pool, float] = {}
    for pool, record in records.items():
        # One index probe per pool, newest first: cheap however long the series is.
        stmt = (
            select(CleanPriceRow.price)
            .where(CleanPriceRow.pool_id == record.id, CleanPriceRow.product_id == product_id)
            .order_by(CleanPriceRow.bucket.desc())
            .limit(1)
        )
        price = session.execute(stmt).scalar_one_or_none()
        if price is not None:
            out[pool] = float(price)
    return out


def record_on_demand_prices(
    session: Session, region: str, prices: Mapping[str, float], at: datetime, product: str = DEFAULT_PRODUCT
) -> None:
    """Upsert the on-demand price of each instance type in ``region`` (the newest one wins)."""
    if not prices:
        return
    product_id = ensure_products(session, [product])[product]
    insert = postgresql.insert if is_postgresql(session) else sqlite.insert
    rows = [
        {"region": region, "instance_type": t, "product_id": product_id, "price": float(p), "updated_at": at}
        for t, p in sorted(prices.items())
    ]
    stmt = insert(OnDemandPriceRow).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["region", "instance_type", "product_id"],
        set_={"price": stmt.excluded.price, "updated_at": stmt.excluded.updated_at},
    )
    session.execute(stmt)


def on_demand_prices(
    session: Session, pools: Sequence[Pool], product: str = DEFAULT_PRODUCT
) -> dict[tuple[str, str], float]:
    """On-demand prices keyed by (region, instance type) for the regions and types of ``pools``."""
    keys = sorted({(region_of(p.zone), p.instance_type) for p in pools})
    product_id = _product_id(session, product)
    if not keys or product_id is None:
        return {}
    stmt = select(OnDemandPriceRow.region, OnDemandPriceRow.instance_type, OnDemandPriceRow.price).where(
        OnDemandPriceRow.product_id == product_id,
        OnDemandPriceRow.region.in_(sorted({k[0] for k in keys})),
        OnDemandPriceRow.instance_type.in_(sorted({k[1] for k in keys})),
    )
    return {(r, t): float(p) for r, t, p in session.execute(stmt)}
