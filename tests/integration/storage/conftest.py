"""Storage tests run on a real PostgreSQL database (see tests/fakes/postgres.py), emptied per test."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import pytest

from spot_operator.planning.model import Pool
from spot_operator.ports import PriceObservation

SAMPLE = (
    Path(__file__).resolve().parents[3].parent
    / "shared/data/spot-prices/2022-05-31-describe-spot-price-history.tsv.gz"
)


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
