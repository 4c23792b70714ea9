"""Real DescribeSpotPriceHistory rows (2022-05-31, all regions) from ../shared/data, shaped as boto3 answers.

The file names zones by id (``use1-az4``); which zone name an id has differs per AWS account. Tests map
``<region prefix>-az<N>`` to ``<region>`` + the N-th letter, a fixed stand-in for one account's mapping.
"""

from __future__ import annotations

import gzip
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
SPOT_FILE = DATA / "spot-prices" / "2022-05-31-describe-spot-price-history.tsv.gz"
REGION_OF_PREFIX = {
    "use1": "us-east-1",
    "use2": "us-east-2",
    "usw1": "us-west-1",
    "usw2": "us-west-2",
    "euw1": "eu-west-1",
    "euc1": "eu-central-1",
}


def zone_name(zone_id: str) -> str | None:
    prefix, _, number = zone_id.partition("-az")
    region = REGION_OF_PREFIX.get(prefix)
    if region is None or not number.isdigit():
        return None
    return region + "abcdefgh"[int(number) - 1]


@cache
def _rows() -> tuple[dict[str, Any], ...]:
    rows = []
    with gzip.open(SPOT_FILE, "rt") as fh:
        for line in fh:
            zone_id, instance_type, product, price, stamp = line.rstrip("\n").split("\t")
            zone = zone_name(zone_id)
            if zone is None:
                continue
            rows.append(
                {
                    "AvailabilityZone": zone,
                    "InstanceType": instance_type,
                    "ProductDescription": product,
                    "SpotPrice": price,
                    "Timestamp": datetime.fromisoformat(stamp),
                }
            )
    return tuple(rows)


def spot_rows(region: str | None = None, product: str | None = "Linux/UNIX") -> list[dict[str, Any]]:
    """Rows of the real file (skips the test when ../shared/data is absent)."""
    if not SPOT_FILE.exists():
        pytest.skip(f"real spot price rows not found at {SPOT_FILE}")
    return [
        dict(r)
        for r in _rows()
        if (region is None or r["AvailabilityZone"].startswith(region))
        and (product is None or r["ProductDescription"] == product)
    ]
