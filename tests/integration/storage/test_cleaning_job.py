"""The cleaning job on PostgreSQL: real rows in, the clean 5-minute series out, idempotently."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from spot_operator import metrics
from spot_operator.planning.model import Pool
from spot_operator.ports import PriceObservation
from spot_operator.storage.cleaning_job import clean, clean_recent, run_cleaning
from spot_operator.storage.ingest import ingest_observations
from spot_operator.storage.models import CleanPriceRow, RawPriceRow
from spot_operator.storage.series import recent_prices

from .conftest import sample_rows

pytestmark = pytest.mark.postgres

SINCE = datetime(2022, 5, 31, 18, tzinfo=UTC)
END = datetime(2022, 6, 1, tzinfo=UTC)
B = timedelta(minutes=5)


def region_rows(prefix: str = "euw3-") -> list[PriceObservation]:
    return [o for o in sample_rows() if o.pool.zone.startswith(prefix)]


def bucket_of(at: datetime) -> datetime:
    return at - timedelta(seconds=at.timestamp() % 300)


def digest(session: Session) -> list[tuple[object, ...]]:
    return [tuple(r) for r in session.execute(text("SELECT * FROM clean_prices ORDER BY 1, 2, 3"))]


def load(sessions: sessionmaker[Session], rows: list[PriceObservation]) -> None:
    with sessions.begin() as s:
        ingest_observations(s, rows, END)


def test_real_rows_become_held_series_up_to_the_coverage(sessions: sessionmaker[Session]) -> None:
    rows = region_rows()
    load(sessions, rows)
    with sessions.begin() as s:
        summary = clean(s, None, SINCE, END)
        methods = dict(
            s.execute(select(CleanPriceRow.method, func.count()).group_by(CleanPriceRow.method)).all()
        )

    # Every series is known from its first change to the end of the page's coverage: no gaps at all.
    first: dict[tuple[Pool, str], datetime] = {}
    changed: set[tuple[Pool, str, datetime]] = set()
    for o in rows:
        key = (o.pool, o.product)
        first[key] = min(first.get(key, o.at), o.at)
        changed.add((o.pool, o.product, bucket_of(o.at)))
    expected = sum((END - bucket_of(t)) // B for t in first.values())
    assert summary.points == expected
    assert summary.filled == 0
    assert methods == {"observed": len(changed), "held": expected - len(changed)}


def test_a_quiet_pool_holds_its_one_price_and_products_stay_apart(sessions: sessionmaker[Session]) -> None:
    rows = region_rows()
    load(sessions, rows)
    per_pool: dict[Pool, dict[str, list[PriceObservation]]] = defaultdict(lambda: defaultdict(list))
    for o in rows:
        per_pool[o.pool][o.product].append(o)
    # A pool quoted in several products, each with a single change in six hours.
    pool, products = next(
        (p, prods)
        for p, prods in sorted(per_pool.items())
        if len(prods) >= 3 and all(len(v) == 1 for v in prods.values())
    )
    with sessions.begin() as s:
        clean(s, [pool], SINCE, END)
        stored = s.execute(
            text(
                "SELECT pr.name, c.price, c.method FROM clean_prices c"
                " JOIN products pr ON pr.id = c.product_id JOIN pools p ON p.id = c.pool_id"
                " WHERE p.instance_type = :t AND p.zone = :z"
            ),
            {"t": pool.instance_type, "z": pool.zone},
        ).all()
    by_product: dict[str, set[float]] = defaultdict(set)
    for product, price, _method in stored:
        by_product[product].add(price)
    assert set(by_product) == set(products)
    for product, (row,) in products.items():
        assert by_product[product] == {row.price}
    assert len({next(iter(v)) for v in by_product.values()}) > 1  # the products' prices differ


def test_cleaning_twice_changes_nothing(sessions: sessionmaker[Session]) -> None:
    load(sessions, region_rows())
    with sessions.begin() as s:
        first = clean(s, None, SINCE, END)
    with sessions.begin() as s:
        before = digest(s)
        second = clean(s, None, SINCE, END)
        after = digest(s)
    assert first.written == first.points > 0
    assert (second.written, second.deleted) == (0, 0)
    assert after == before


def test_overlapping_windows_give_the_table_one_window_gives(sessions: sessionmaker[Session]) -> None:
    load(sessions, region_rows())
    with sessions.begin() as s:
        clean(s, None, SINCE, END)
        whole = digest(s)
        s.execute(text("TRUNCATE clean_prices"))
    with sessions.begin() as s:
        clean(s, None, SINCE, SINCE + timedelta(hours=4))
        clean(s, None, SINCE + timedelta(hours=3), END)
        assert digest(s) == whole


def test_points_that_no_longer_follow_from_the_raw_rows_are_removed(sessions: sessionmaker[Session]) -> None:
    rows = region_rows()
    load(sessions, rows)
    with sessions.begin() as s:
        clean(s, None, SINCE, END)
    # Forget one pool's rows (as retention would) and re-clean: its points go.
    victim = rows[0].pool
    with sessions.begin() as s:
        s.execute(
            text(
                "DELETE FROM price_observations o USING pools p WHERE p.id = o.pool_id"
                " AND p.instance_type = :t AND p.zone = :z"
            ),
            {"t": victim.instance_type, "z": victim.zone},
        )
        summary = clean(s, None, SINCE, END)
        assert summary.deleted > 0
        assert recent_prices(s, [victim], SINCE) == {}


def agent_reports(pool: Pool, minutes: list[int], price: float = 0.1) -> list[PriceObservation]:
    return [
        PriceObservation(pool, SINCE + timedelta(minutes=m, seconds=30), price, source="agent-primary")
        for m in minutes
    ]


def test_filled_points_are_stored_with_their_method_and_confidence(sessions: sessionmaker[Session]) -> None:
    pool = Pool("m5.large", "us-east-1a")
    sibling = Pool("m5.large", "us-east-1b")
    # Reports at 0-5 min, then 15 (short gap), 45 (medium), 165 (long: 2 hours) minutes.
    reports = agent_reports(pool, [0, 5, 15, 45, 165])
    aws = [PriceObservation(sibling, SINCE, 0.2), PriceObservation(sibling, SINCE + timedelta(hours=1), 0.3)]
    with sessions.begin() as s:
        ingest_observations(s, reports + aws, SINCE + timedelta(hours=3))
        clean(s, [pool], SINCE, SINCE + timedelta(hours=3))
        points = recent_prices(s, [pool], SINCE)[pool]
    by_minute = {int((p.at - SINCE).total_seconds() // 60): p for p in points}
    assert by_minute[10].method == "linear" and by_minute[10].confidence == 0.85
    assert by_minute[30].method == "weighted" and by_minute[30].confidence == 0.75
    assert by_minute[50].method == "cross-pool" and by_minute[50].confidence == 0.70
    assert by_minute[50].price == pytest.approx(0.1)  # the sibling had not moved yet
    assert by_minute[60].price == pytest.approx(0.15)  # it then moved by +50 %
    assert {by_minute[m].method for m in (0, 5, 15, 45, 165)} == {"observed"}
    assert sorted(by_minute) == list(range(0, 170, 5))


def test_the_periodic_job_cleans_live_pools_and_reports_the_filled_share(
    sessions: sessionmaker[Session],
) -> None:
    pool = Pool("m5.large", "us-east-1a")
    now = SINCE + timedelta(hours=1)
    with sessions.begin() as s:
        ingest_observations(s, agent_reports(pool, [0, 10, 20]), now)
    summary = clean_recent(sessions, now)
    assert (summary.points, summary.filled) == (5, 2)

    async def once() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_cleaning(sessions, 3600, clock=lambda: now, stop=stop))
        await asyncio.sleep(0)
        for _ in range(200):
            if metrics.INTERPOLATED_SHARE._value.get() == pytest.approx(0.4):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task

    metrics.INTERPOLATED_SHARE.set(0)
    asyncio.run(once())
    assert metrics.INTERPOLATED_SHARE._value.get() == pytest.approx(0.4)
    with sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(CleanPriceRow)) == 5
        assert s.scalar(select(func.count()).select_from(RawPriceRow)) == 3


@pytest.mark.slow
def test_the_whole_sample_cleans(sessions: sessionmaker[Session]) -> None:
    rows = sample_rows()
    load(sessions, rows)
    with sessions.begin() as s:
        summary = clean(s, None, SINCE, END)
    first: dict[tuple[Pool, str], datetime] = {}
    for o in rows:
        first[(o.pool, o.product)] = min(first.get((o.pool, o.product), o.at), o.at)
    assert summary.points == sum((END - bucket_of(t)) // B for t in first.values())
