"""Ingestion on PostgreSQL with the real DescribeSpotPriceHistory rows: bulk, idempotent, concurrent."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from spot_operator.planning.model import Pool
from spot_operator.ports import PriceObservation
from spot_operator.storage.ingest import ingest_observations
from spot_operator.storage.models import FeedCoverageRow, PoolRow, ProductRow, RawPriceRow

from .conftest import sample_rows

pytestmark = pytest.mark.postgres

END = datetime(2022, 6, 1, tzinfo=UTC)


def table_digest(session: Session) -> list[tuple[object, ...]]:
    return [tuple(r) for r in session.execute(text("SELECT * FROM price_observations ORDER BY 1, 2, 3, 4"))]


def test_the_real_sample_goes_in_once_and_a_second_time_changes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    rows = sample_rows()
    with sessions.begin() as s:
        first = ingest_observations(s, rows, END)
    with sessions.begin() as s:
        before = table_digest(s)
    with sessions.begin() as s:
        again = ingest_observations(s, rows, END + timedelta(hours=1))
    with sessions.begin() as s:
        after = table_digest(s)

    distinct = {(o.pool, o.product, o.at) for o in rows}
    assert first.offered == len(rows) == 33_362
    assert first.inserted == len(distinct)
    assert again.inserted == 0
    assert after == before  # received_at included: a re-ingested page changes nothing


def test_pools_keep_the_zone_id_and_get_its_region(sessions: sessionmaker[Session]) -> None:
    rows = sample_rows()
    with sessions.begin() as s:
        ingest_observations(s, rows, END)
        pools = {
            (t, z): r for t, z, r in s.execute(select(PoolRow.instance_type, PoolRow.zone, PoolRow.region))
        }
        products = set(s.scalars(select(ProductRow.name)))
    assert len(pools) == len({(o.pool.instance_type, o.pool.zone) for o in rows})
    assert pools[("g4dn.4xlarge", "euw3-az2")] == "eu-west-3"
    assert {r for (_, z), r in pools.items() if z.startswith("use1-")} == {"us-east-1"}
    assert products == {"Linux/UNIX", "Red Hat Enterprise Linux", "SUSE Linux", "Windows"}


def test_a_page_overlapping_stored_rows_inserts_only_the_new_ones(sessions: sessionmaker[Session]) -> None:
    rows = sorted(sample_rows(), key=lambda o: o.at)
    half = len(rows) // 2
    with sessions.begin() as s:
        ingest_observations(s, rows[: half + 1000], END)
    with sessions.begin() as s:
        result = ingest_observations(s, rows[half:], END)
        total = s.scalar(select(func.count()).select_from(RawPriceRow))
    distinct = {(o.pool, o.product, o.at) for o in rows}
    assert total == len(distinct)
    assert result.inserted == len(distinct) - len({(o.pool, o.product, o.at) for o in rows[: half + 1000]})


def test_the_first_report_of_a_key_wins(sessions: sessionmaker[Session]) -> None:
    at = datetime(2022, 5, 31, 18, tzinfo=UTC)
    pool = Pool("m5.large", "us-east-1a")
    with sessions.begin() as s:
        ingest_observations(s, [PriceObservation(pool, at, 0.10)], END)
        ingest_observations(s, [PriceObservation(pool, at, 0.20)], END)
        ingest_observations(s, [PriceObservation(pool, at, 0.30), PriceObservation(pool, at, 0.40)], END)
        prices = list(s.scalars(select(RawPriceRow.price)))
    assert prices == [0.10]


def test_sources_are_separate_series(sessions: sessionmaker[Session]) -> None:
    at = datetime(2022, 5, 31, 18, tzinfo=UTC)
    pool = Pool("m5.large", "us-east-1a")
    page = [
        PriceObservation(pool, at, 0.1, source=src) for src in ("aws-api", "agent-primary", "agent-replica")
    ]
    with sessions.begin() as s:
        assert ingest_observations(s, page, END).inserted == 3
    with pytest.raises(ValueError, match="unknown price source"), sessions.begin() as s:
        ingest_observations(s, [PriceObservation(pool, at, 0.1, source="billing")], END)


def test_coverage_moves_forward_only(sessions: sessionmaker[Session]) -> None:
    pool = Pool("m5.large", "us-east-1a")
    t = datetime(2022, 5, 31, 18, tzinfo=UTC)
    with sessions.begin() as s:
        ingest_observations(s, [PriceObservation(pool, t, 0.1)], t + timedelta(hours=2))
        ingest_observations(s, [PriceObservation(pool, t, 0.1)], t + timedelta(hours=1))  # an older page
        coverage = select(FeedCoverageRow.latest_at, FeedCoverageRow.covered_until)
        assert tuple(s.execute(coverage).one()) == (t, t + timedelta(hours=2))
        ingest_observations(s, [PriceObservation(pool, t + timedelta(hours=3), 0.1)], t + timedelta(hours=2))
        # A row proves its own time even if the page claims less.
        assert tuple(s.execute(coverage).one()) == (t + timedelta(hours=3), t + timedelta(hours=3))


def test_concurrent_overlapping_ingests_store_each_row_once(sessions: sessionmaker[Session]) -> None:
    rows = sample_rows()
    errors: list[BaseException] = []
    results: list[int] = []

    def worker(part: list[PriceObservation]) -> None:
        try:
            with sessions.begin() as s:
                results.append(ingest_observations(s, part, END).inserted)
        except BaseException as exc:
            errors.append(exc)

    # Two writers, each with two thirds of the rows: a third overlaps.
    third = len(rows) // 3
    threads = [threading.Thread(target=worker, args=(p,)) for p in (rows[: 2 * third], rows[third:])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    distinct = {(o.pool, o.product, o.at) for o in rows}
    with sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(RawPriceRow)) == len(distinct)
    assert sum(results) == len(distinct)  # nothing counted twice either
    assert len(results) == 2
