"""Reading the clean series, and the on-demand prices savings are measured against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from spot_operator.planning.model import Pool
from spot_operator.ports import PricePoint
from spot_operator.prices.zones import region_of

from .db import is_postgresql
from .ingest import EPOCH
from .models import CleanPriceRow, OnDemandPriceRow
from .pools import DEFAULT_PRODUCT, PoolRecord, ensure_products, find_pools, product_ids


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
    records = find_pools(session, pools)
    product_id = _product_id(session, product)
    if not records or product_id is None:
        return {}
    by_id = {r.id: p for p, r in records.items()}
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
    records = find_pools(session, pools)
    product_id = _product_id(session, product)
    if not records or product_id is None:
        return {}
    return {
        records_pool: arrays
        for records_pool, arrays in _arrays(session, records, product_id, since, until).items()
        if len(arrays.times)
    }


def _arrays(
    session: Session,
    records: Mapping[Pool, PoolRecord],
    product_id: int,
    since: datetime,
    until: datetime | None,
) -> dict[Pool, PriceArrays]:
    by_id = {r.id: p for p, r in records.items()}
    epoch = func.extract("epoch", CleanPriceRow.bucket) if is_postgresql(session) else None
    bucket_col = epoch if epoch is not None else CleanPriceRow.bucket
    stmt = select(CleanPriceRow.pool_id, bucket_col, CleanPriceRow.price, CleanPriceRow.confidence).where(
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
    if epoch is not None:
        times = np.fromiter((float(r[1]) for r in rows), np.float64, len(rows))
    else:
        times = np.fromiter(((r[1] - EPOCH).total_seconds() for r in rows), np.float64, len(rows))
    prices = np.fromiter((r[2] for r in rows), np.float64, len(rows))
    confidence = np.fromiter((r[3] for r in rows), np.float64, len(rows))
    starts = np.flatnonzero(np.r_[True, pool_col[1:] != pool_col[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    return {
        by_id[int(pool_col[a])]: PriceArrays(times[a:b], prices[a:b], confidence[a:b])
        for a, b in zip(starts, ends, strict=True)
    }


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
