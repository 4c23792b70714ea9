"""Pure parsing of price answers: DescribeSpotPriceHistory rows, Price List products, the bundled table."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from spot_operator.planning.model import Pool
from spot_operator.ports import PriceObservation

LINUX = "Linux/UNIX"
FALLBACK_FILE = "on_demand_prices.json"


class PriceParseError(ValueError):
    """A price row or product that does not have the shape AWS documents."""


def _aware(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise PriceParseError(f"timestamp {value!r} is not a time")


def parse_spot_price(row: Mapping[str, Any]) -> PriceObservation:
    """One ``SpotPriceHistory`` entry -> PriceObservation (pool from type and zone)."""
    try:
        instance_type = str(row["InstanceType"])
        zone = str(row["AvailabilityZone"])
        price = float(row["SpotPrice"])
        at = _aware(row["Timestamp"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PriceParseError(f"spot price row {dict(row)!r}: {exc}") from None
    if price < 0 or not instance_type or not zone:
        raise PriceParseError(f"spot price row {dict(row)!r}: empty type/zone or negative price")
    product = str(row.get("ProductDescription", LINUX))
    return PriceObservation(Pool(instance_type, zone), at, price, product=product, source="aws-api")


def new_spot_prices(rows: Iterable[Mapping[str, Any]], since: datetime | None) -> list[PriceObservation]:
    """Parse rows, keep those strictly after ``since`` (AWS also returns the price in force at the start
    time, which an incremental caller already has), drop exact duplicates, oldest first."""
    seen: set[tuple[Pool, datetime, float, str]] = set()
    kept: list[PriceObservation] = []
    for row in rows:
        obs = parse_spot_price(row)
        if since is not None and obs.at <= since:
            continue
        key = (obs.pool, obs.at, obs.price, obs.product)
        if key in seen:
            continue
        seen.add(key)
        kept.append(obs)
    kept.sort(key=lambda o: (o.at, o.pool))
    return kept


@dataclass(frozen=True)
class OnDemandPrice:
    instance_type: str
    region: str
    usd_per_hour: float


def parse_on_demand_product(text: str) -> OnDemandPrice | None:
    """One ``GetProducts`` PriceList entry (a JSON string) -> the hourly on-demand price.

    None for products that are not a per-hour on-demand instance price (the filters already ask for
    Linux, shared tenancy, no pre-installed software, capacity status Used).
    """
    try:
        product = json.loads(text)
        attributes = product["product"]["attributes"]
        on_demand = product.get("terms", {}).get("OnDemand", {})
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise PriceParseError(f"price list entry is not a product: {exc}") from None
    instance_type = attributes.get("instanceType")
    region = attributes.get("regionCode", "")
    if not instance_type:
        return None
    for term in on_demand.values():
        for dimension in term.get("priceDimensions", {}).values():
            if dimension.get("unit") != "Hrs":
                continue
            usd = dimension.get("pricePerUnit", {}).get("USD")
            try:
                price = float(usd)
            except (TypeError, ValueError):
                raise PriceParseError(f"{instance_type}: price {usd!r} is not a number") from None
            if price > 0:
                return OnDemandPrice(str(instance_type), str(region), price)
    return None


@dataclass(frozen=True)
class FallbackTable:
    prices: Mapping[str, Mapping[str, float]]  # region -> instance type -> USD per hour
    source: Mapping[str, str]


@cache
def fallback_table() -> FallbackTable:
    """The bundled on-demand table (origin and date are in the file's ``source``)."""
    text = resources.files("spot_operator.adapters.aws").joinpath(FALLBACK_FILE).read_text()
    raw = json.loads(text)
    return FallbackTable(
        prices={r: {t: float(p) for t, p in types.items()} for r, types in raw["prices"].items()},
        source={k: str(v) for k, v in raw["source"].items()},
    )
