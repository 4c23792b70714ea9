"""Reading the clean series back: the binary-COPY array path agrees with the row path, point for point."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from spot_operator.planning.model import Pool
from spot_operator.storage.cleaning_job import clean
from spot_operator.storage.ingest import ingest_observations
from spot_operator.storage.series import recent_price_arrays, recent_prices

from .conftest import sample_rows

pytestmark = pytest.mark.postgres

SINCE = datetime(2022, 5, 31, 18, tzinfo=UTC)
END = datetime(2022, 6, 1, tzinfo=UTC)


@pytest.fixture
def cleaned(sessions: sessionmaker[Session]) -> list[Pool]:
    rows = [o for o in sample_rows() if o.pool.zone.startswith("euw3-")]
    with sessions.begin() as s:
        ingest_observations(s, rows, END)
        clean(s, None, SINCE, END)
    return sorted({o.pool for o in rows if o.product == "Linux/UNIX"})


def test_arrays_hold_exactly_the_points(sessions: sessionmaker[Session], cleaned: list[Pool]) -> None:
    since = END - timedelta(hours=3)
    with sessions.begin() as s:
        points = recent_prices(s, cleaned, since)
        arrays = recent_price_arrays(s, cleaned, since)

    assert len(points) > 5
    assert set(arrays) == set(points)
    for pool, series in points.items():
        got = arrays[pool]
        assert got.times.tolist() == [p.at.timestamp() for p in series]
        assert got.prices.tolist() == [p.price for p in series]
        assert got.confidence.tolist() == [p.confidence for p in series]
        assert got.times.dtype == got.prices.dtype == got.confidence.dtype == np.float64


def test_until_is_exclusive_and_unknown_or_empty_pools_are_absent(
    sessions: sessionmaker[Session], cleaned: list[Pool]
) -> None:
    until = END - timedelta(hours=1)
    since = until - timedelta(minutes=30)
    stranger = Pool("x9.huge", "euw3-az1")
    with sessions.begin() as s:
        arrays = recent_price_arrays(s, [*cleaned, stranger], since, until)
        points = recent_prices(s, cleaned, since)
        nothing = recent_price_arrays(s, cleaned, END + timedelta(days=1))

    assert stranger not in arrays
    assert nothing == {}
    assert arrays
    for pool, got in arrays.items():
        expected = [p.at.timestamp() for p in points[pool] if p.at < until]
        assert got.times.tolist() == expected
        assert got.times[-1] == until.timestamp() - 300  # held up to the coverage, the bound excluded
