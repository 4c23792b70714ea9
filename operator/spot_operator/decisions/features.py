"""Pure feature building: from a pool's price and availability history to one row of numbers per time.

Inputs are frozen dataclasses holding read-only numpy arrays; outputs are ``float64`` arrays with one
row per query time and one column per name in :data:`FEATURES`. Everything is causal: a row for time
``t`` uses what was known at ``t`` and nothing after, so the same history can hold the future (as a
replayed trace does) without leaking it. Missing knowledge is ``NaN`` (xgboost routes it; the rules
fall back to their prior).

Availability is a step function: ``values[i]`` holds from ``times[i]`` until ``times[i + 1]`` (the last
one until ``end``). A change from available to unavailable is an *interruption* (a capacity reclaim of
the pool), the reverse a *recovery*.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
import numpy.typing as npt

from spot_operator.planning.model import Pool

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

HOUR = 3600.0
DAY = 24 * HOUR
# Times since an event are capped: beyond a week they carry no more information and the cap keeps the
# rules' arithmetic finite.
MAX_HOURS = 7 * 24.0

FEATURES: tuple[str, ...] = (
    "hours_since_interruption",  # since the pool's last reclaim (censored: since observation began)
    "hours_since_recovery",  # age of the current available run (0 when unavailable)
    "interruptions_24h",  # reclaims of this pool in the last day
    "available_share_1h",
    "available_share_6h",
    "available_share_24h",
    "sibling_available_share",  # same type, other zones: share available now
    "sibling_interruptions_6h",  # same type, other zones: reclaims per sibling in the last 6 hours
    "hour_of_day",  # UTC, fractional
    "day_of_week",  # UTC, Monday = 0
    "price_vs_on_demand",  # latest spot price / on-demand price
    "price_volatility_24h",  # time-weighted coefficient of variation of the price over a day
    "advisor_band",  # Spot Advisor band 0..4
)
INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURES)}


def to_epoch(when: datetime) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _frozen(values: npt.ArrayLike, dtype: type[np.generic]) -> npt.NDArray[np.generic]:
    arr = np.array(values, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


def _as_times(ts: npt.ArrayLike | float) -> FloatArray:
    return np.atleast_1d(np.asarray(ts, dtype=np.float64))


@dataclass(frozen=True)
class AvailabilityHistory:
    """Whether a pool could launch an instance, as a step function over epoch seconds."""

    times: FloatArray
    values: BoolArray
    end: float

    def __post_init__(self) -> None:
        times = np.asarray(self.times, dtype=np.float64)
        values = np.asarray(self.values, dtype=np.bool_)
        if times.ndim != 1 or times.shape != values.shape or times.size == 0:
            raise ValueError("availability needs matching, non-empty 1-d times and values")
        if np.any(np.diff(times) <= 0):
            raise ValueError("availability times must be strictly increasing")
        if self.end < times[-1]:
            raise ValueError("availability end precedes its last change")
        # Keep only real changes, so interruptions and recoveries are exactly the change points.
        keep = np.r_[True, values[1:] != values[:-1]]
        object.__setattr__(self, "times", _frozen(times[keep], np.float64))
        object.__setattr__(self, "values", _frozen(values[keep], np.bool_))

    @classmethod
    def from_samples(
        cls, start: float, gap_seconds: float, samples: npt.ArrayLike, min_available: int = 1
    ) -> AvailabilityHistory:
        """From evenly spaced counts of obtainable (or running) instances, as in the spot traces."""
        counts = np.asarray(samples)
        if counts.size == 0:
            raise ValueError("no samples")
        available = counts >= min_available
        times = start + np.arange(counts.size, dtype=np.float64) * gap_seconds
        return cls(times, available, start + counts.size * gap_seconds)

    @cached_property
    def _cumulative(self) -> FloatArray:
        """Available seconds from ``times[0]`` up to each change point (and ``end`` last)."""
        edges = np.r_[self.times, self.end]
        out: FloatArray = np.concatenate(([0.0], np.cumsum(np.diff(edges) * self.values)))
        return out

    @cached_property
    def scalar(self) -> _ScalarAvailability:
        """The same history as Python lists, for one-time-at-a-time callers (built once)."""
        return _ScalarAvailability(self)

    @cached_property
    def interruptions(self) -> FloatArray:
        idx = np.flatnonzero(self.values[:-1] & ~self.values[1:]) + 1
        return self.times[idx]

    @cached_property
    def recoveries(self) -> FloatArray:
        idx = np.flatnonzero(~self.values[:-1] & self.values[1:]) + 1
        return self.times[idx]

    @property
    def start(self) -> float:
        return float(self.times[0])

    def state_at(self, ts: npt.ArrayLike | float) -> FloatArray:
        """1.0 available, 0.0 not, NaN outside the observed range."""
        t = _as_times(ts)
        idx = np.searchsorted(self.times, t, side="right") - 1
        out = self.values[np.clip(idx, 0, None)].astype(np.float64)
        out[(idx < 0) | (t > self.end)] = np.nan
        return out

    def available_seconds(self, ts: npt.ArrayLike | float) -> FloatArray:
        """Seconds available between the start of observation and ``ts`` (clipped to the observed range)."""
        t = np.clip(_as_times(ts), self.times[0], self.end)
        idx = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, self.times.size - 1)
        return self._cumulative[idx] + self.values[idx] * (t - self.times[idx])

    def share(self, ts: npt.ArrayLike | float, window_seconds: float) -> FloatArray:
        """Share of the observed part of ``(t - window, t]`` during which the pool was available."""
        t = _as_times(ts)
        hi = np.clip(t, self.times[0], self.end)
        lo = np.clip(t - window_seconds, self.times[0], self.end)
        span = hi - lo
        got = self.available_seconds(hi) - self.available_seconds(lo)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(span > 0, got / np.where(span > 0, span, 1.0), np.nan)

    def count_interruptions(self, ts: npt.ArrayLike | float, window_seconds: float) -> FloatArray:
        """Reclaims in ``(t - window, t]``."""
        t = _as_times(ts)
        hi = np.searchsorted(self.interruptions, t, side="right")
        lo = np.searchsorted(self.interruptions, t - window_seconds, side="right")
        return (hi - lo).astype(np.float64)

    def hours_since_interruption(self, ts: npt.ArrayLike | float) -> FloatArray:
        """Hours since the last reclaim at or before ``t``; with none, since observation began (censored)."""
        t = _as_times(ts)
        # The start of observation stands in for a reclaim before it (every real one is later).
        marks = np.concatenate(([self.times[0]], self.interruptions))
        last = marks[np.clip(np.searchsorted(marks, t, side="right") - 1, 0, None)]
        out = np.minimum((t - last) / HOUR, MAX_HOURS)
        out[t < self.times[0]] = np.nan
        return out

    def hours_since_recovery(self, ts: npt.ArrayLike | float) -> FloatArray:
        """Age of the current available run in hours (0 while unavailable; censored at the start)."""
        t = _as_times(ts)
        idx = np.searchsorted(self.times, t, side="right") - 1
        run_start = self.times[np.clip(idx, 0, None)]
        state = self.values[np.clip(idx, 0, None)]
        out = np.where(state, np.minimum((t - run_start) / HOUR, MAX_HOURS), 0.0)
        out[idx < 0] = np.nan
        return out

    def interruption_within(self, ts: npt.ArrayLike | float, horizon_seconds: float) -> FloatArray:
        """Label: 1.0 when a reclaim happens in ``(t, t + horizon]``, 0.0 if not, NaN past the end."""
        t = _as_times(ts)
        hi = np.searchsorted(self.interruptions, t + horizon_seconds, side="right")
        lo = np.searchsorted(self.interruptions, t, side="right")
        out = (hi > lo).astype(np.float64)
        out[(t + horizon_seconds > self.end) | (t < self.times[0])] = np.nan
        return out


@dataclass(frozen=True)
class PriceHistory:
    """Spot prices as a step function: each price holds until the next one."""

    times: FloatArray
    prices: FloatArray

    def __post_init__(self) -> None:
        times = np.asarray(self.times, dtype=np.float64)
        prices = np.asarray(self.prices, dtype=np.float64)
        if times.ndim != 1 or times.shape != prices.shape or times.size == 0:
            raise ValueError("prices need matching, non-empty 1-d times and prices")
        order = np.argsort(times, kind="stable")
        times, prices = times[order], prices[order]
        # Several observations at one instant: the last one reported wins.
        last = np.r_[times[1:] != times[:-1], True]
        object.__setattr__(self, "times", _frozen(times[last], np.float64))
        object.__setattr__(self, "prices", _frozen(prices[last], np.float64))

    @cached_property
    def _integrals(self) -> tuple[FloatArray, FloatArray]:
        widths = np.diff(self.times)
        p = self.prices[:-1]
        return np.r_[0.0, np.cumsum(widths * p)], np.r_[0.0, np.cumsum(widths * p * p)]

    def price_at(self, ts: npt.ArrayLike | float) -> FloatArray:
        t = _as_times(ts)
        idx = np.searchsorted(self.times, t, side="right") - 1
        out = self.prices[np.clip(idx, 0, None)].copy()
        out[idx < 0] = np.nan
        return out

    def _integral(self, t: FloatArray) -> tuple[FloatArray, FloatArray]:
        t = np.maximum(t, self.times[0])
        idx = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, self.times.size - 1)
        dt = t - self.times[idx]
        p = self.prices[idx]
        first, second = self._integrals
        return first[idx] + p * dt, second[idx] + p * p * dt

    def volatility(self, ts: npt.ArrayLike | float, window_seconds: float) -> FloatArray:
        """Time-weighted coefficient of variation over ``(t - window, t]`` (NaN before the first price)."""
        t = _as_times(ts)
        lo = np.maximum(t - window_seconds, self.times[0])
        span = t - lo
        hi1, hi2 = self._integral(t)
        lo1, lo2 = self._integral(lo)
        with np.errstate(invalid="ignore", divide="ignore"):
            safe = np.where(span > 0, span, 1.0)
            mean = (hi1 - lo1) / safe
            var = np.maximum((hi2 - lo2) / safe - mean * mean, 0.0)
            cv = np.where(mean > 0, np.sqrt(var) / np.where(mean > 0, mean, 1.0), 0.0)
        cv[t < self.times[0]] = np.nan
        cv[(span <= 0) & (t >= self.times[0])] = 0.0
        return cv


@dataclass(frozen=True)
class PoolHistory:
    """Everything known about one pool for scoring."""

    pool: Pool
    availability: AvailabilityHistory | None = None
    prices: PriceHistory | None = None
    on_demand_price: float | None = None
    advisor_band: int | None = None


@dataclass(frozen=True)
class FeatureMatrix:
    """Rows of :data:`FEATURES`, with the pool and time of each row."""

    values: FloatArray
    pools: tuple[Pool, ...] = ()
    times: FloatArray = field(default_factory=lambda: np.empty(0))

    def column(self, name: str) -> FloatArray:
        return self.values[:, INDEX[name]]


def siblings_of(pool: Pool, histories: Mapping[Pool, PoolHistory]) -> list[PoolHistory]:
    """The same instance type and lifecycle in the other zones we know of, in a stable order."""
    return [
        h
        for p, h in sorted(histories.items())
        if p.instance_type == pool.instance_type and p.lifecycle == pool.lifecycle and p.zone != pool.zone
    ]


def _nan(n: int) -> FloatArray:
    return np.full(n, np.nan)


def pool_features(
    history: PoolHistory, ts: npt.ArrayLike, siblings: Sequence[PoolHistory] = ()
) -> FloatArray:
    """One row per time in ``ts`` for one pool: shape ``(len(ts), len(FEATURES))``."""
    t = _as_times(ts)
    n = t.size
    out = np.full((n, len(FEATURES)), np.nan)
    av = history.availability
    if av is not None:
        out[:, INDEX["hours_since_interruption"]] = av.hours_since_interruption(t)
        out[:, INDEX["hours_since_recovery"]] = av.hours_since_recovery(t)
        out[:, INDEX["interruptions_24h"]] = av.count_interruptions(t, DAY)
        out[:, INDEX["available_share_1h"]] = av.share(t, HOUR)
        out[:, INDEX["available_share_6h"]] = av.share(t, 6 * HOUR)
        out[:, INDEX["available_share_24h"]] = av.share(t, DAY)
    known = [s.availability for s in siblings if s.availability is not None]
    if known:
        states = np.vstack([s.state_at(t) for s in known])
        counts = np.vstack([s.count_interruptions(t, 6 * HOUR) for s in known])
        observed = ~np.isnan(states)
        with np.errstate(invalid="ignore", divide="ignore"):
            n_obs = observed.sum(axis=0)
            out[:, INDEX["sibling_available_share"]] = np.where(
                n_obs > 0, np.nansum(states, axis=0) / np.maximum(n_obs, 1), np.nan
            )
            out[:, INDEX["sibling_interruptions_6h"]] = np.where(
                n_obs > 0, np.sum(np.where(observed, counts, 0.0), axis=0) / np.maximum(n_obs, 1), np.nan
            )
    out[:, INDEX["hour_of_day"]] = (t % DAY) / HOUR
    # 1970-01-01 was a Thursday (Monday = 0).
    out[:, INDEX["day_of_week"]] = (np.floor(t / DAY) + 3) % 7
    if history.prices is not None:
        price = history.prices.price_at(t)
        if history.on_demand_price:
            out[:, INDEX["price_vs_on_demand"]] = price / history.on_demand_price
        out[:, INDEX["price_volatility_24h"]] = history.prices.volatility(t, DAY)
    if history.advisor_band is not None:
        out[:, INDEX["advisor_band"]] = float(history.advisor_band)
    return out


class _ScalarAvailability:
    """The same arithmetic as :class:`AvailabilityHistory` for one time, on Python lists.

    Scoring asks for one time per pool; per-call numpy overhead would dominate at that size, so
    :func:`features_at` uses this path. A test checks it against the vectorised one, row for row.
    """

    def __init__(self, av: AvailabilityHistory) -> None:
        self.t: list[float] = av.times.tolist()
        self.v: list[bool] = av.values.tolist()
        self.c: list[float] = av._cumulative.tolist()
        self.end = float(av.end)
        self.i: list[float] = av.interruptions.tolist()
        self.marks: list[float] = [self.t[0], *self.i]

    def state(self, t: float) -> float:
        if t < self.t[0] or t > self.end:
            return math.nan
        return 1.0 if self.v[bisect_right(self.t, t) - 1] else 0.0

    def _seconds(self, t: float) -> float:
        t = min(max(t, self.t[0]), self.end)
        k = min(max(bisect_right(self.t, t) - 1, 0), len(self.t) - 1)
        return self.c[k] + self.v[k] * (t - self.t[k])

    def share(self, t: float, window: float) -> float:
        hi = min(max(t, self.t[0]), self.end)
        lo = min(max(t - window, self.t[0]), self.end)
        span = hi - lo
        return (self._seconds(hi) - self._seconds(lo)) / span if span > 0 else math.nan

    def count(self, t: float, window: float) -> float:
        return float(bisect_right(self.i, t) - bisect_right(self.i, t - window))

    def since_interruption(self, t: float) -> float:
        if t < self.t[0]:
            return math.nan
        last = self.marks[max(bisect_right(self.marks, t) - 1, 0)]
        return min((t - last) / HOUR, MAX_HOURS)

    def since_recovery(self, t: float) -> float:
        k = bisect_right(self.t, t) - 1
        if k < 0:
            return math.nan
        return min((t - self.t[k]) / HOUR, MAX_HOURS) if self.v[k] else 0.0


def _scalar_row(history: PoolHistory, siblings: Sequence[_ScalarAvailability], t: float) -> list[float]:
    row = [math.nan] * len(FEATURES)
    if history.availability is not None:
        av = history.availability.scalar
        row[INDEX["hours_since_interruption"]] = av.since_interruption(t)
        row[INDEX["hours_since_recovery"]] = av.since_recovery(t)
        row[INDEX["interruptions_24h"]] = av.count(t, DAY)
        row[INDEX["available_share_1h"]] = av.share(t, HOUR)
        row[INDEX["available_share_6h"]] = av.share(t, 6 * HOUR)
        row[INDEX["available_share_24h"]] = av.share(t, DAY)
    if siblings:
        states = [s.state(t) for s in siblings]
        observed = [not math.isnan(x) for x in states]
        n_obs = sum(observed)
        if n_obs:
            row[INDEX["sibling_available_share"]] = (
                sum(x for x, ok in zip(states, observed, strict=True) if ok) / n_obs
            )
            counts = [s.count(t, 6 * HOUR) for s in siblings]
            row[INDEX["sibling_interruptions_6h"]] = (
                sum(c for c, ok in zip(counts, observed, strict=True) if ok) / n_obs
            )
    row[INDEX["hour_of_day"]] = (t % DAY) / HOUR
    row[INDEX["day_of_week"]] = (math.floor(t / DAY) + 3) % 7
    if history.prices is not None:
        price = float(history.prices.price_at(t)[0])
        if history.on_demand_price:
            row[INDEX["price_vs_on_demand"]] = price / history.on_demand_price
        row[INDEX["price_volatility_24h"]] = float(history.prices.volatility(t, DAY)[0])
    if history.advisor_band is not None:
        row[INDEX["advisor_band"]] = float(history.advisor_band)
    return row


def features_at(histories: Mapping[Pool, PoolHistory], pools: Sequence[Pool], now: float) -> FeatureMatrix:
    """One row per pool at one time; a pool with no history gets a row of what is known (time, NaNs).

    Equal to :func:`pool_features` at ``[now]`` with :func:`siblings_of` for each pool, computed on the
    scalar path (see :class:`_ScalarAvailability`).
    """
    scalar = {p: h.availability.scalar for p, h in sorted(histories.items()) if h.availability is not None}
    groups: dict[tuple[str, str], list[tuple[Pool, _ScalarAvailability]]] = {}
    for p, av in scalar.items():
        groups.setdefault((p.instance_type, p.lifecycle.value), []).append((p, av))
    rows = np.empty((len(pools), len(FEATURES)))
    for i, pool in enumerate(pools):
        history = histories.get(pool) or PoolHistory(pool)
        siblings = [
            av for p, av in groups.get((pool.instance_type, pool.lifecycle.value), []) if p.zone != pool.zone
        ]
        rows[i] = _scalar_row(history, siblings, now)
    return FeatureMatrix(rows, tuple(pools), np.full(len(pools), now))


def latest_price(history: PoolHistory | None, now: float) -> float | None:
    if history is None or history.prices is None:
        return None
    price = float(history.prices.price_at(now)[0])
    return None if np.isnan(price) else price


__all__ = [
    "DAY",
    "FEATURES",
    "HOUR",
    "INDEX",
    "MAX_HOURS",
    "AvailabilityHistory",
    "BoolArray",
    "FeatureMatrix",
    "FloatArray",
    "PoolHistory",
    "PriceHistory",
    "features_at",
    "from_epoch",
    "latest_price",
    "pool_features",
    "siblings_of",
    "to_epoch",
]
