"""Storage tests run on a real PostgreSQL database (see tests/fakes/postgres.py), emptied per test."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from spot_operator.planning.model import Pool
from spot_operator.ports import PriceObservation
from spot_operator.storage.db import make_engine, make_session_factory
from spot_operator.storage.models import Base

SAMPLE = (
    Path(__file__).resolve().parents[3].parent
    / "shared/data/spot-prices/2022-05-31-describe-spot-price-history.tsv.gz"
)


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """A session factory on an emptied database."""
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return make_session_factory(engine)


def sample_rows() -> list[PriceObservation]:
    """The real DescribeSpotPriceHistory rows (zone IDs kept as the zone, e.g. 'use1-az1')."""
    if not SAMPLE.exists():
        pytest.skip(f"real price sample not found at {SAMPLE} (see ../shared/data/README.md)")
    rows = []
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        for line in fh:
            zone_id, instance_type, product, price, timestamp = line.rstrip("\n").split("\t")
            rows.append(
                PriceObservation(
                    Pool(instance_type, zone_id), datetime.fromisoformat(timestamp), float(price), product
                )
            )
    return rows
