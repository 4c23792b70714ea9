"""Load raw prices, clean them (``prices.cleaning``, pure), and write the clean series back.

``clean(session, pools, since, until)`` makes the stored buckets of those pools in ``[since, until)``
equal to what cleaning gives for the raw rows now stored: new and changed points are upserted (rows
that did not change are not rewritten) and points that no longer exist are deleted. It loads the
context cleaning needs (``CONTEXT_SECONDS`` either side, the price in force before, the sibling zones),
so running it on overlapping windows, or twice, gives the same table.

``run_cleaning`` is the periodic job: every ``clean_interval_seconds`` it re-cleans the recent past
(long enough for a 4-hour gap closed by a late price to be filled) for every pool whose feed is live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy import Select, and_, delete, func, select, text, tuple_
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session, sessionmaker

from spot_operator import metrics
from spot_operator.planning.model import Pool
from spot_operator.prices.cleaning import (
    CONTEXT_SECONDS,
    CleanColumns,
    RawColumns,
    SeriesColumns,
    clean_columns,
    hold_context,
)
from spot_operator.prices.model import Method, RawSource, flag_labels

from .db import is_postgresql, rowcount
from .ingest import EPOCH
from .models import CleanPriceRow, FeedCoverageRow, RawPriceRow
from .pgbinary import PG_EPOCH_US, binary_copy, copy_in, copy_out, fixed_rows
from .pools import PoolRecord, all_pools, find_pools, siblings

log = logging.getLogger(__name__)

SERIES_SHIFT: Final = 16  # series id = pool id << 16 | product id
LOOKBACK_SECONDS: Final = CONTEXT_SECONDS + 3600  # what the periodic job re-cleans each run


@dataclass(frozen=True)
class CleanSummary:
    since: datetime
    until: datetime
    series: int  # (pool, product) series written
    points: int  # clean points in the window
    filled: int  # of which filled rather than measured
    deleted: int  # stored points that no longer exist
    written: int  # points inserted or changed

    @property
    def filled_share(self) -> float:
        return self.filled / self.points if self.points else 0.0


def series_id(pool_id: int, product_id: int) -> int:
    return (pool_id << SERIES_SHIFT) | product_id


def clean(session: Session, pools: Sequence[Pool] | None, since: datetime, until: datetime) -> CleanSummary:
    """Clean ``pools`` (None: every pool with prices) over ``[since, until)``, in the caller's transaction."""
    targets = all_pools(session) if pools is None else {r.id: r for r in find_pools(session, pools).values()}
    if not targets or until <= since:
        return CleanSummary(since, until, 0, 0, 0, 0, 0)
    context = siblings(session, targets.values())
    context.update(targets)
    lo_s, hi_s = hold_context(_epoch(since), _epoch(until))
    lo, hi = _from_epoch(lo_s), _from_epoch(hi_s)

    raw = _load_raw(session, sorted(context), lo, hi)
    series = _series_info(session, context, raw)
    cleaned = clean_columns(raw, series, _epoch(since), _epoch(until))
    wanted = np.isin(cleaned.series >> SERIES_SHIFT, np.fromiter(targets, np.int64, len(targets)))
    cleaned = _subset(cleaned, wanted)
    deleted, written = _write(session, sorted(targets), cleaned, since, until)
    filled = int(np.count_nonzero(cleaned.method > Method.AVERAGED))
    return CleanSummary(since, until, len(np.unique(cleaned.series)), len(cleaned), filled, deleted, written)


async def run_cleaning(
    factory: sessionmaker[Session],
    interval_seconds: float,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    stop: asyncio.Event | None = None,
    lookback_seconds: float = LOOKBACK_SECONDS,
) -> None:
    """The periodic job: re-clean the last ``lookback_seconds`` of live pools every ``interval_seconds``.

    A failed run (database away, ...) is logged and retried at the next tick; it never stops the job.
    """
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            summary = await asyncio.to_thread(clean_recent, factory, clock(), lookback_seconds)
            metrics.INTERPOLATED_SHARE.set(summary.filled_share)
            log.info(
                "cleaned %d series, %d points (%.1f%% filled), %d changed, %d removed",
                summary.series,
                summary.points,
                100 * summary.filled_share,
                summary.written,
                summary.deleted,
            )
        except Exception:
            log.exception("price cleaning failed; retrying in %.0f s", interval_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_seconds)


def clean_recent(
    factory: sessionmaker[Session], now: datetime, lookback_seconds: float = LOOKBACK_SECONDS
) -> CleanSummary:
    """One run of the periodic job, in its own transaction."""
    since = now - timedelta(seconds=lookback_seconds)
    with factory.begin() as session:
        live = _live_pools(session, since - timedelta(seconds=CONTEXT_SECONDS))
        if not live:
            return CleanSummary(since, now, 0, 0, 0, 0, 0)
        return clean(session, [r.pool for r in live], since, now)


# --------------------------------------------------------------------------------------------- loading


def _epoch(at: datetime) -> float:
    return (at - EPOCH).total_seconds()


def _from_epoch(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def _live_pools(session: Session, since: datetime) -> list[PoolRecord]:
    stmt = (
        select(FeedCoverageRow.pool_id)
        .where((FeedCoverageRow.covered_until >= since) | (FeedCoverageRow.latest_at >= since))
        .distinct()
    )
    ids = [int(i) for i in session.scalars(stmt)]
    pools = all_pools(session) if ids else {}
    return [pools[i] for i in ids if i in pools]


def _raw_query(pool_ids: Sequence[int], lo: datetime, hi: datetime) -> Select[Any]:
    """Rows in [lo, hi) plus, per aws-api series, the last row before ``lo`` (the price in force)."""
    o = RawPriceRow.__table__.alias("o")
    c = FeedCoverageRow.__table__.alias("c")
    inner = RawPriceRow.__table__.alias("i")
    in_window = select(o.c.pool_id, o.c.product_id, o.c.source, o.c.at, o.c.price).where(
        o.c.pool_id.in_(pool_ids), o.c.at >= lo, o.c.at < hi
    )
    last_before = (
        select(
            c.c.pool_id,
            c.c.product_id,
            select(func.max(inner.c.at))
            .where(
                inner.c.pool_id == c.c.pool_id,
                inner.c.product_id == c.c.product_id,
                inner.c.source == int(RawSource.AWS_API),
                inner.c.at < lo,
            )
            .scalar_subquery()
            .label("at"),
        )
        .where(c.c.pool_id.in_(pool_ids), c.c.source == int(RawSource.AWS_API))
        .subquery("m")
    )
    p = RawPriceRow.__table__.alias("p")
    in_force = select(p.c.pool_id, p.c.product_id, p.c.source, p.c.at, p.c.price).join(
        last_before,
        and_(
            p.c.pool_id == last_before.c.pool_id,
            p.c.product_id == last_before.c.product_id,
            p.c.source == int(RawSource.AWS_API),
            p.c.at == last_before.c.at,
        ),
    )
    return in_window.union_all(in_force)  # type: ignore[return-value]


_RAW_OUT = np.dtype(
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
    ]
)


def _load_raw(session: Session, pool_ids: Sequence[int], lo: datetime, hi: datetime) -> RawColumns:
    if is_postgresql(session):
        return _load_raw_postgresql(session, pool_ids, lo, hi)
    rows = session.execute(_raw_query(pool_ids, lo, hi)).all()
    pool = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    product = np.fromiter((r[1] for r in rows), np.int64, len(rows))
    return RawColumns(
        (pool << SERIES_SHIFT) | product,
        np.fromiter((_epoch(r[3]) for r in rows), np.float64, len(rows)),
        np.fromiter((r[4] for r in rows), np.float64, len(rows)),
        np.fromiter((r[2] for r in rows), np.int8, len(rows)),
    )


def _load_raw_postgresql(session: Session, pool_ids: Sequence[int], lo: datetime, hi: datetime) -> RawColumns:
    """The same query streamed out with a binary COPY: no Python object per row."""
    compiled = _raw_query(pool_ids, lo, hi).compile(
        dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
    )
    rec = fixed_rows(copy_out(session, str(compiled)), _RAW_OUT)
    return RawColumns(
        (rec["pool"].astype(np.int64) << SERIES_SHIFT) | rec["product"].astype(np.int64),
        (rec["at"].astype(np.int64) + PG_EPOCH_US) / 1e6,
        rec["price"].astype(np.float64),
        rec["source"].astype(np.int8),
    )


def _series_info(session: Session, pools: dict[int, PoolRecord], raw: RawColumns) -> SeriesColumns:
    ids = np.unique(raw.series)
    if len(ids) == 0:
        return SeriesColumns(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    pool_ids = sorted({int(i) >> SERIES_SHIFT for i in ids})
    stmt = select(FeedCoverageRow.pool_id, FeedCoverageRow.product_id, FeedCoverageRow.covered_until).where(
        FeedCoverageRow.pool_id.in_(pool_ids), FeedCoverageRow.source == int(RawSource.AWS_API)
    )
    covered = {series_id(p, q): _epoch(c) for p, q, c in session.execute(stmt)}
    groups: dict[tuple[str, str, int], int] = {}
    group = np.empty(len(ids), np.int64)
    cover = np.empty(len(ids))
    for n, sid in enumerate(ids.tolist()):
        record = pools[sid >> SERIES_SHIFT]
        key = (record.region, record.instance_type, sid & ((1 << SERIES_SHIFT) - 1))
        group[n] = groups.setdefault(key, len(groups))
        cover[n] = covered.get(sid, np.nan)
    return SeriesColumns(ids.astype(np.int64), group, cover)


def _subset(c: CleanColumns, mask: npt.NDArray[np.bool_]) -> CleanColumns:
    return CleanColumns(
        c.series[mask], c.bucket[mask], c.price[mask], c.method[mask], c.confidence[mask], c.flags[mask]
    )


# --------------------------------------------------------------------------------------------- writing

_CLEAN_STAGE = np.dtype(
    [
        ("n", ">i2"),
        ("l_pool", ">i4"),
        ("pool", ">i4"),
        ("l_product", ">i4"),
        ("product", ">i2"),
        ("l_bucket", ">i4"),
        ("bucket", ">i8"),
        ("l_price", ">i4"),
        ("price", ">f8"),
        ("l_method", ">i4"),
        ("method", ">i2"),
        ("l_confidence", ">i4"),
        ("confidence", ">f8"),
        ("l_flags", ">i4"),
        ("flags", ">i2"),
    ]
)


def _case(column: str, labels: dict[int, str]) -> str:
    whens = " ".join(f"WHEN {code} THEN '{label}'" for code, label in sorted(labels.items()))
    return f"CASE {column} {whens} END"


def _write(
    session: Session, pool_ids: Sequence[int], c: CleanColumns, since: datetime, until: datetime
) -> tuple[int, int]:
    if is_postgresql(session):
        return _write_postgresql(session, pool_ids, c, since, until)
    return _write_portable(session, pool_ids, c, since, until)


def _write_postgresql(
    session: Session, pool_ids: Sequence[int], c: CleanColumns, since: datetime, until: datetime
) -> tuple[int, int]:
    stage = f"_clean_stage_{uuid.uuid4().hex[:12]}"
    session.execute(
        text(
            f"CREATE TEMP TABLE {stage} (pool_id int4, product_id int2, bucket timestamptz, price float8,"
            " method int2, confidence float8, flags int2) ON COMMIT DROP"
        )
    )
    rec = np.empty(len(c), _CLEAN_STAGE)
    rec["n"] = 7
    rec["l_pool"], rec["pool"] = 4, c.series >> SERIES_SHIFT
    rec["l_product"], rec["product"] = 2, c.series & ((1 << SERIES_SHIFT) - 1)
    rec["l_bucket"], rec["bucket"] = 8, c.bucket * 1_000_000 - PG_EPOCH_US
    rec["l_price"], rec["price"] = 8, c.price
    rec["l_method"], rec["method"] = 2, c.method
    rec["l_confidence"], rec["confidence"] = 8, c.confidence
    rec["l_flags"], rec["flags"] = 2, c.flags
    copy_in(session, stage, "pool_id, product_id, bucket, price, method, confidence, flags", binary_copy(rec))
    session.execute(text(f"ANALYZE {stage}"))
    window = {"pools": list(pool_ids), "since": since, "until": until}
    deleted = rowcount(
        session.execute(
            text(
                f"""
            DELETE FROM clean_prices AS c
            WHERE c.pool_id = ANY(:pools) AND c.bucket >= :since AND c.bucket < :until
              AND NOT EXISTS (
                  SELECT 1 FROM {stage} AS s
                  WHERE s.pool_id = c.pool_id AND s.product_id = c.product_id AND s.bucket = c.bucket
              )
            """
            ),
            window,
        )
    )
    methods = {int(m): m.label for m in Method}
    sources = {int(m): m.source.value for m in Method}
    flags = {bits: ",".join(flag_labels(bits)) for bits in range(2)}
    written = rowcount(
        session.execute(
            text(
                f"""
            INSERT INTO clean_prices AS c
                (pool_id, product_id, bucket, price, source, method, confidence, flags)
            SELECT pool_id, product_id, bucket, price, {_case("method", sources)}, {_case("method", methods)},
                   confidence, {_case("flags", flags)}
            FROM {stage}
            ON CONFLICT (pool_id, product_id, bucket) DO UPDATE
            SET price = excluded.price, source = excluded.source, method = excluded.method,
                confidence = excluded.confidence, flags = excluded.flags
            WHERE (c.price, c.method, c.confidence, c.flags)
                  IS DISTINCT FROM (excluded.price, excluded.method, excluded.confidence, excluded.flags)
            """
            )
        )
    )
    session.execute(text(f"DROP TABLE {stage}"))
    return int(deleted), int(written)


def _write_portable(
    session: Session, pool_ids: Sequence[int], c: CleanColumns, since: datetime, until: datetime
) -> tuple[int, int]:
    """Replace the window's rows (the sandbox's path: simple rather than minimal)."""
    table = CleanPriceRow
    existing = {
        (p, q, _epoch(b)): (price, method, conf, flags)
        for p, q, b, price, method, conf, flags in session.execute(
            select(
                table.pool_id,
                table.product_id,
                table.bucket,
                table.price,
                table.method,
                table.confidence,
                table.flags,
            ).where(table.pool_id.in_(pool_ids), table.bucket >= since, table.bucket < until)
        )
    }
    rows = []
    keep = set()
    for sid, bucket, price, method, conf, flags in zip(
        c.series.tolist(),
        c.bucket.tolist(),
        c.price.tolist(),
        c.method.tolist(),
        c.confidence.tolist(),
        c.flags.tolist(),
        strict=True,
    ):
        key = (sid >> SERIES_SHIFT, sid & ((1 << SERIES_SHIFT) - 1), float(bucket))
        m = Method(method)
        value = (price, m.label, conf, ",".join(flag_labels(flags)))
        keep.add(key)
        if existing.get(key) != value:
            rows.append(
                {
                    "pool_id": key[0],
                    "product_id": key[1],
                    "bucket": _from_epoch(bucket),
                    "price": price,
                    "source": m.source.value,
                    "method": value[1],
                    "confidence": conf,
                    "flags": value[3],
                }
            )
    stale = [k for k in existing if k not in keep]
    for start in range(0, len(stale), 300):
        chunk = stale[start : start + 300]
        session.execute(
            delete(table).where(
                tuple_(table.pool_id, table.product_id, table.bucket).in_(
                    [(p, q, _from_epoch(b)) for p, q, b in chunk]
                )
            )
        )
    for start in range(0, len(rows), 500):
        stmt = sqlite.insert(CleanPriceRow).values(rows[start : start + 500])
        stmt = stmt.on_conflict_do_update(
            index_elements=["pool_id", "product_id", "bucket"],
            set_={k: getattr(stmt.excluded, k) for k in ("price", "source", "method", "confidence", "flags")},
        )
        session.execute(stmt)
    return len(stale), len(rows)


__all__ = ["CleanSummary", "clean", "clean_recent", "run_cleaning", "series_id"]
