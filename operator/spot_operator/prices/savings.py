"""What an agent saved against on-demand: switch history x the clean price series (pure).

The primary's history is a run of stretches, one per completed switch, each in one pool, bought as
spot or on-demand, until the next switch completed (or ``now``). A spot stretch costs the clean price
of each 5-minute bucket times the part of the bucket it covers; the baseline is the on-demand price of
the same instance type in the same region over the same time. Buckets without a clean price (gaps
longer than 4 hours, or before the history starts) are left out of both sides and reported as
``unpriced_hours`` rather than guessed. An on-demand stretch saves nothing.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from spot_operator.ports import AgentSavings, SavingsPeriod

from .model import BUCKET_SECONDS

HOUR = 3600
DAY = 86400
CURRENT_PRICE_MAX_AGE = HOUR  # an older price says nothing about the current rate


@dataclass(frozen=True)
class Stretch:
    """The primary in one pool from ``start`` to ``end`` (epoch seconds)."""

    pool: Hashable
    spot: bool
    start: float
    end: float
    on_demand: float | None  # hourly on-demand price of its instance type; None: unknown


@dataclass(frozen=True, eq=False)
class Series:
    """A clean series: bucket starts (epoch seconds, ascending) and prices."""

    times: npt.NDArray[np.float64]
    prices: npt.NDArray[np.float64]


def stretches_from_switches(
    switches: Sequence[tuple[float, Hashable, bool]], on_demand: Mapping[Hashable, float], now: float
) -> list[Stretch]:
    """(completed at, pool, spot?) per completed switch -> the stretches between them, up to ``now``."""
    ordered = sorted((s for s in switches if s[0] < now), key=lambda s: s[0])
    out = []
    for i, (start, pool, spot) in enumerate(ordered):
        end = ordered[i + 1][0] if i + 1 < len(ordered) else now
        if end > start:
            out.append(Stretch(pool, spot, start, end, on_demand.get(pool)))
    return out


def compute_savings(
    agent: str,
    stretches: Sequence[Stretch],
    series: Mapping[Hashable, Series],
    now: float,
    hours: int = 48,
    days: int = 30,
) -> AgentSavings:
    """Hourly (the last ``hours``), daily (the last ``days``) and to-date savings, and the current rate."""
    hour_cost: dict[int, float] = {}
    hour_od: dict[int, float] = {}
    hour_priced: dict[int, float] = {}
    unpriced = 0.0
    for stretch in stretches:
        bucket, overlap = _buckets(stretch.start, min(stretch.end, now))
        if len(bucket) == 0:
            continue
        if stretch.on_demand is None:
            unpriced += float(overlap.sum()) / HOUR if stretch.spot else 0.0
            continue
        if stretch.spot:
            price, found = _lookup(series.get(stretch.pool), bucket)
            unpriced += float(overlap[~found].sum()) / HOUR
            bucket, overlap, price = bucket[found], overlap[found], price[found]
        else:
            price = np.full(len(bucket), stretch.on_demand)
        hour = (bucket // HOUR).astype(np.int64)
        _accumulate(hour_cost, hour, price * overlap / HOUR)
        _accumulate(hour_od, hour, np.full(len(hour), stretch.on_demand) * overlap / HOUR)
        _accumulate(hour_priced, hour, overlap / HOUR)

    now_hour = int(now // HOUR)
    hourly = tuple(
        _period(h * HOUR, hour_cost, hour_od, hour_priced, [h])
        for h in range(now_hour - hours + 1, now_hour + 1)
    )
    now_day = int(now // DAY)
    per_day = DAY // HOUR
    daily = tuple(
        _period(d * DAY, hour_cost, hour_od, hour_priced, range(d * per_day, (d + 1) * per_day))
        for d in range(now_day - days + 1, now_day + 1)
    )
    to_date = sum(hour_od.values()) - sum(hour_cost.values())
    rate, percent = _current_rate(stretches, series, now)
    return AgentSavings(
        agent=agent,
        hourly_usd=rate,
        percent=percent,
        to_date_usd=to_date,
        hourly=hourly,
        daily=daily,
        unpriced_hours=unpriced,
    )


def _buckets(start: float, end: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Bucket starts touched by [start, end) and the seconds of each covered."""
    if end <= start:
        return np.empty(0), np.empty(0)
    first = np.floor(start / BUCKET_SECONDS)
    last = np.ceil(end / BUCKET_SECONDS) - 1
    bucket = np.arange(first, last + 1) * BUCKET_SECONDS
    overlap = np.minimum(end, bucket + BUCKET_SECONDS) - np.maximum(start, bucket)
    keep = overlap > 0
    return bucket[keep], overlap[keep]


def _lookup(
    series: Series | None, bucket: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    if series is None or len(series.times) == 0:
        return np.zeros(len(bucket)), np.zeros(len(bucket), np.bool_)
    pos = np.clip(np.searchsorted(series.times, bucket), 0, len(series.times) - 1)
    found = series.times[pos] == bucket
    return np.where(found, series.prices[pos], 0.0), found


def _accumulate(into: dict[int, float], keys: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
    uniq, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=len(uniq))
    for k, v in zip(uniq.tolist(), sums.tolist(), strict=True):
        into[k] = into.get(k, 0.0) + v


def _period(
    start: float,
    cost: Mapping[int, float],
    on_demand: Mapping[int, float],
    priced: Mapping[int, float],
    hours: Sequence[int] | range,
) -> SavingsPeriod:
    return SavingsPeriod(
        start=datetime.fromtimestamp(start, UTC),
        cost_usd=sum(cost.get(h, 0.0) for h in hours),
        on_demand_usd=sum(on_demand.get(h, 0.0) for h in hours),
        priced_hours=sum(priced.get(h, 0.0) for h in hours),
    )


def _current_rate(
    stretches: Sequence[Stretch], series: Mapping[Hashable, Series], now: float
) -> tuple[float, float]:
    """Saving per hour now: on-demand minus the newest clean price at most an hour old."""
    current = [s for s in stretches if s.start <= now <= s.end]
    if not current or not current[-1].spot or current[-1].on_demand is None:
        return 0.0, 0.0
    stretch = current[-1]
    s = series.get(stretch.pool)
    if s is None or len(s.times) == 0:
        return 0.0, 0.0
    pos = int(np.searchsorted(s.times, now, side="right")) - 1
    if pos < 0 or now - float(s.times[pos]) > CURRENT_PRICE_MAX_AGE:
        return 0.0, 0.0
    assert stretch.on_demand is not None
    rate = stretch.on_demand - float(s.prices[pos])
    return rate, (100.0 * rate / stretch.on_demand if stretch.on_demand > 0 else 0.0)


def epoch(at: datetime) -> float:
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(seconds=1)
