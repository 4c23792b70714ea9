"""Retention deletes old rows in short batches and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from spot_operator.planning.model import Pool
from spot_operator.ports import PriceObservation
from spot_operator.storage.cleaning_job import clean
from spot_operator.storage.ingest import ingest_observations
from spot_operator.storage.models import CleanPriceRow, RawPriceRow
from spot_operator.storage.retention import apply_retention, purge

pytestmark = pytest.mark.postgres

NOW = datetime(2022, 6, 30, tzinfo=UTC)
POOLS = [Pool("m5.large", f"us-east-1{z}") for z in "abc"]


def seed(sessions: sessionmaker[Session], days: int = 10) -> None:
    # One change per pool every 2 hours over the last ``days`` days: 12 * days rows per pool.
    rows = [
        PriceObservation(pool, NOW - timedelta(hours=2 * i), 0.05 + i * 1e-4)
        for pool in POOLS
        for i in range(1, 12 * days + 1)
    ]
    with sessions.begin() as s:
        ingest_observations(s, rows, NOW)


def count(sessions: sessionmaker[Session], table: type[RawPriceRow] | type[CleanPriceRow]) -> int:
    with sessions.begin() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def test_raw_rows_older_than_the_cutoff_go_in_batches(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    cutoff = NOW - timedelta(days=3)
    with sessions.begin() as s:
        keep = s.execute(
            select(func.count()).select_from(RawPriceRow).where(RawPriceRow.at >= cutoff)
        ).scalar_one()
        oldest_kept = s.scalar(select(func.min(RawPriceRow.at)).where(RawPriceRow.at >= cutoff))
    total = count(sessions, RawPriceRow)

    result = purge(sessions, "price_observations", cutoff, batch_size=50)

    assert result.deleted == total - keep
    assert result.batches == (total - keep) // 50 + 1
    assert count(sessions, RawPriceRow) == keep
    with sessions.begin() as s:
        assert s.scalar(select(func.min(RawPriceRow.at))) == oldest_kept


def test_a_run_stops_after_max_batches_and_the_next_run_continues(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    total = count(sessions, RawPriceRow)
    first = purge(sessions, "price_observations", NOW, batch_size=20, max_batches=2)
    assert (first.deleted, first.batches) == (40, 2)
    assert count(sessions, RawPriceRow) == total - 40
    rest = purge(sessions, "price_observations", NOW, batch_size=1000)
    assert rest.deleted == total - 40
    assert count(sessions, RawPriceRow) == 0


def test_raw_and_clean_have_their_own_retention(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    with sessions.begin() as s:
        clean(s, POOLS, NOW - timedelta(days=10), NOW)
    clean_before = count(sessions, CleanPriceRow)

    raw_result, clean_result = apply_retention(sessions, NOW, raw_days=2, clean_days=5, batch_size=500)

    with sessions.begin() as s:
        oldest_raw = s.execute(select(func.min(RawPriceRow.at))).scalar_one()
        oldest_clean = s.execute(select(func.min(CleanPriceRow.bucket))).scalar_one()
    assert oldest_raw >= NOW - timedelta(days=2)
    assert NOW - timedelta(days=5) <= oldest_clean < NOW - timedelta(days=2)
    # 3 pools x 5 days x 288 buckets survive of the clean series.
    assert count(sessions, CleanPriceRow) == 3 * 5 * 288
    assert clean_result.deleted == clean_before - 3 * 5 * 288
    assert raw_result.deleted > 0


def test_an_unknown_table_is_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="no retention"):
        purge(sessions, "switches", NOW)
