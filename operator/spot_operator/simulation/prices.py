"""Prices for a simulated scenario: from the Spot Advisor's savings, or from a price series file.

Advisor prices: a pool's spot price is ``on-demand x (1 - savings)`` for its original region and type.
The advisor gives one figure per region, so zones of one region would tie; a seeded, mean-reverting
deviation per zone (an Ornstein-Uhlenbeck process in log-price, changing on a fixed step) keeps them
apart the way real zones differ, and the seed makes it reproducible. ``noise=0`` gives the flat advisor
prices.

A price series file is CSV with a header ``pool,timestamp,price`` (pool ``<type>.<zone>``, ISO-8601
time); it replaces the advisor prices of the pools it names.
"""

from __future__ import annotations

import csv
import json
import zlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import numpy as np

from spot_operator.decisions.advisor import SpotAdvisor
from spot_operator.decisions.features import HOUR, PriceHistory, to_epoch
from spot_operator.planning.model import Pool
from spot_operator.simulation.traces import Scenario

# Used when the operator's bundled table (adapters/aws/on_demand_prices.json) cannot be read: the AWS
# list prices (Linux, us-east-1, USD per hour) of the instance types in the shared traces.
_TRACE_TYPES_ON_DEMAND = {
    "p3.2xlarge": 3.06,
    "p3.16xlarge": 24.48,
    "p2.xlarge": 0.9,
    "p2.8xlarge": 7.2,
    "r5.16xlarge": 4.032,
}
_BUNDLED = Path(__file__).resolve().parents[1] / "adapters" / "aws" / "on_demand_prices.json"


def on_demand_prices(region: str = "us-east-1") -> dict[str, float]:
    """On-demand list prices by type: the operator's bundled table (us-east-1), else the trace types."""
    try:
        table = json.loads(_BUNDLED.read_text(encoding="utf-8"))["prices"]
        prices = table.get(region) or table["us-east-1"]
        return {**_TRACE_TYPES_ON_DEMAND, **{str(k): float(v) for k, v in prices.items()}}
    except (OSError, KeyError, ValueError):
        return dict(_TRACE_TYPES_ON_DEMAND)


def _rng(seed: int, pool: Pool) -> np.random.Generator:
    # crc32, not hash(): Python salts str hashes per process.
    return np.random.default_rng([seed, zlib.crc32(pool.name.encode())])


def advisor_prices(
    scenario: Scenario,
    on_demand: float,
    advisor: SpotAdvisor | None,
    seed: int = 0,
    noise: float = 0.05,
    step_hours: float = 1.0,
    reversion_hours: float = 24.0,
    default_savings_percent: float = 70.0,
) -> dict[Pool, PriceHistory]:
    """One price series per pool of the scenario (see the module docstring)."""
    start = to_epoch(scenario.start)
    steps = max(1, int(np.ceil(scenario.duration_seconds / (step_hours * HOUR))) + 1)
    times = (start + np.arange(steps) * step_hours * HOUR).astype(np.float64)
    keep = np.exp(-step_hours / reversion_hours)
    out: dict[Pool, PriceHistory] = {}
    for pool in scenario.pools:
        savings = None
        if advisor is not None:
            savings = advisor.savings_percent(scenario.original_region(pool), pool.instance_type)
        base = on_demand * (1.0 - (default_savings_percent if savings is None else savings) / 100.0)
        if noise > 0:
            rng = _rng(seed, pool)
            shocks = rng.normal(0.0, noise * np.sqrt(1.0 - keep * keep), steps)
            x = np.empty(steps)
            x[0] = rng.normal(0.0, noise)
            for i in range(1, steps):
                x[i] = keep * x[i - 1] + shocks[i]
            prices = base * np.exp(x - noise * noise / 2.0)
        else:
            prices = np.full(steps, base)
        out[pool] = PriceHistory(times, np.round(prices, 4).astype(np.float64))
    return out


def load_price_series(path: Path) -> dict[Pool, PriceHistory]:
    """``pool,timestamp,price`` rows -> one series per pool."""
    rows: dict[Pool, list[tuple[float, float]]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"pool", "timestamp", "price"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            try:
                pool = Pool.parse(row["pool"].strip())
                at = datetime.fromisoformat(row["timestamp"].strip().replace("Z", "+00:00"))
                price = float(row["price"])
            except (ValueError, AttributeError) as exc:
                raise ValueError(f"{path}:{line}: {exc}") from None
            rows.setdefault(pool, []).append((to_epoch(at), price))
    return {
        pool: PriceHistory(np.array([t for t, _ in points]), np.array([p for _, p in points]))
        for pool, points in rows.items()
    }


def merge_prices(
    base: Mapping[Pool, PriceHistory], override: Mapping[Pool, PriceHistory]
) -> dict[Pool, PriceHistory]:
    return {pool: override.get(pool, series) for pool, series in base.items()}


__all__ = ["advisor_prices", "load_price_series", "merge_prices", "on_demand_prices"]
