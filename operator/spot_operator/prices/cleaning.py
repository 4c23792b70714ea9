"""Raw spot prices -> a clean series in fixed 5-minute buckets, each point saying how it was made (pure).

Step-held prices versus gaps
----------------------------
DescribeSpotPriceHistory publishes *changes*: a price holds from its timestamp until the next change
of the same pool and product, and every query also returns the change in force at its start time. A
pool that stays quiet for hours therefore has a **known** price all that time; it is not a gap. So an
``aws-api`` price is held, bucket after bucket, until the next ``aws-api`` change of its series — but
only as far as the feed was actually watched: ``SeriesInfo.covered_until`` (the last time a page
carrying the series arrived). Held buckets are *measured* (method ``held``, confidence 1.00). Beyond
the coverage nothing is known, and the gap rules below apply once a later price arrives.

Agent reports (``agent-primary``, ``agent-replica``) are point samples: they measure the bucket they
fall in and nothing else, so the time between two reports is a gap.

Inside a bucket
---------------
Each source's value is the time-weighted mean of its held prices over the bucket (a change at
minute 4 of 5 weighs 1/5), or the mean of its point samples. Then the sources are ranked
``aws-api`` > ``agent-primary`` > ``agent-replica``: the published market price is the authority the
bill is computed from, the primary's agent watches the pool the workload runs in, the replica's agent
is a second opinion (DESIGN §7: primary over replica). The best source wins when the runner-up is
within 0.5 % of it; otherwise the two are averaged and the point is flagged ``disagreement``
(confidence 0.90: below any single measurement, above any fill). A bucket measured only by a replica
has confidence 0.95.

Gaps, by the length of the run of unknown buckets between two measured ones
---------------------------------------------------------------------------
- short, <= 10 min (1-2 buckets): linear between the neighbours, confidence 0.85;
- medium, <= 30 min (3-6 buckets): inverse-distance weighted mean of the measured buckets within the
  gap's own length on either side, confidence 0.75 (it uses more context than the two neighbours,
  which is what separates it from ``linear``);
- long, <= 4 h (7-48 buckets): the left neighbour's price moved by the median relative move of the
  sibling series (same instance type, region and product, other zones) measured both at the left
  neighbour's bucket and at the bucket being filled, confidence 0.70; a bucket with no such sibling
  stays empty;
- longer, or open-ended (no measured bucket after it): left empty.
Fills are made from measured buckets only, never from other fills, so the result does not depend on
the order in which gaps are visited.

Windows
-------
``clean_columns(..., since, until)`` returns the buckets starting in ``[since, until)``. Buckets up
to :data:`CONTEXT_SECONDS` outside the window are computed as context (anchors and siblings), so the
window's output equals what cleaning all history would give, provided the input holds the rows in
``[since - CONTEXT_SECONDS, until + CONTEXT_SECONDS)`` plus, per series, the last ``aws-api`` row
before that (the price in force).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from .model import BUCKET_SECONDS, CleanSource, Flag, Method, RawSource

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
Bool = npt.NDArray[np.bool_]

TOLERANCE: Final = 0.005
SHORT_GAP_BUCKETS: Final = 2  # <= 10 min
MEDIUM_GAP_BUCKETS: Final = 6  # <= 30 min
LONG_GAP_BUCKETS: Final = 48  # <= 4 h
CONTEXT_SECONDS: Final = (LONG_GAP_BUCKETS + 2) * BUCKET_SECONDS

CONFIDENCE: Final = {
    Method.OBSERVED: 1.00,
    Method.HELD: 1.00,
    Method.AVERAGED: 0.90,
    Method.LINEAR: 0.85,
    Method.WEIGHTED: 0.75,
    Method.CROSS_POOL: 0.70,
}
REPLICA_CONFIDENCE: Final = 0.95


# ------------------------------------------------------------------------------------ inputs, outputs


@dataclass(frozen=True)
class RawPoint:
    """One raw price. ``series`` identifies a pool and product; ``at`` is in epoch seconds."""

    series: int
    at: float
    price: float
    source: RawSource = RawSource.AWS_API


@dataclass(frozen=True)
class SeriesInfo:
    """What cleaning needs to know about a series besides its prices.

    ``group``: series sharing a group are siblings for cross-pool inference (same instance type, region
    and product, other zones); -1 for none. ``covered_until``: epoch seconds up to which the aws-api
    feed of this series was watched, never before its newest aws-api row (ingestion keeps it so); None:
    the last price is not held past its own timestamp.
    """

    series: int
    group: int = -1
    covered_until: float | None = None


@dataclass(frozen=True)
class CleanPoint:
    series: int
    bucket: int  # start of the bucket, epoch seconds
    price: float
    method: Method
    confidence: float
    flags: int = 0

    @property
    def source(self) -> CleanSource:
        return self.method.source


@dataclass(frozen=True, eq=False)
class RawColumns:
    """Raw prices as parallel arrays (the bulk form of :class:`RawPoint`)."""

    series: I64
    at: F64
    price: F64
    source: I8

    def __len__(self) -> int:
        return len(self.series)

    @classmethod
    def of(cls, points: Iterable[RawPoint]) -> RawColumns:
        rows = list(points)
        return cls(
            np.fromiter((p.series for p in rows), np.int64, len(rows)),
            np.fromiter((p.at for p in rows), np.float64, len(rows)),
            np.fromiter((p.price for p in rows), np.float64, len(rows)),
            np.fromiter((int(p.source) for p in rows), np.int8, len(rows)),
        )


@dataclass(frozen=True, eq=False)
class SeriesColumns:
    series: I64
    group: I64
    covered_until: F64  # NaN: not covered

    @classmethod
    def of(cls, infos: Iterable[SeriesInfo]) -> SeriesColumns:
        rows = list(infos)
        return cls(
            np.fromiter((i.series for i in rows), np.int64, len(rows)),
            np.fromiter((i.group for i in rows), np.int64, len(rows)),
            np.fromiter(
                (np.nan if i.covered_until is None else i.covered_until for i in rows), np.float64, len(rows)
            ),
        )


@dataclass(frozen=True, eq=False)
class CleanColumns:
    """The clean series as parallel arrays, sorted by (series, bucket)."""

    series: I64
    bucket: I64  # bucket start, epoch seconds
    price: F64
    method: I8
    confidence: F64
    flags: I8

    def __len__(self) -> int:
        return len(self.series)

    def points(self) -> list[CleanPoint]:
        return [
            CleanPoint(int(s), int(b), float(p), Method(int(m)), float(c), int(f))
            for s, b, p, m, c, f in zip(
                self.series, self.bucket, self.price, self.method, self.confidence, self.flags, strict=True
            )
        ]

    def filled_share(self) -> float:
        """Share of points that were filled rather than measured (the data-quality metric)."""
        return float(np.mean(self.method > Method.AVERAGED)) if len(self) else 0.0


# ----------------------------------------------------------------------------------------- entry points


def clean(
    points: Iterable[RawPoint], series: Iterable[SeriesInfo], since: float, until: float
) -> list[CleanPoint]:
    """The clean points of the buckets starting in ``[since, until)``, sorted by series and bucket."""
    return clean_columns(RawColumns.of(points), SeriesColumns.of(series), since, until).points()


def clean_columns(raw: RawColumns, series: SeriesColumns, since: float, until: float) -> CleanColumns:
    """Vectorised :func:`clean`. Series absent from ``series`` have no group and no coverage."""
    b0 = int(np.ceil(since / BUCKET_SECONDS))
    b1 = int(np.ceil(until / BUCKET_SECONDS))
    if b1 <= b0 or len(raw) == 0:
        return _empty()
    lo = (b0 * BUCKET_SECONDS) - CONTEXT_SECONDS
    hi = (b1 * BUCKET_SECONDS) + CONTEXT_SECONDS

    ids, dense = np.unique(np.concatenate([raw.series, series.series]), return_inverse=True)
    n_series = len(ids)
    raw_idx = dense[: len(raw)].astype(np.int64)
    info_idx = dense[len(raw) :]
    group = np.full(n_series, -1, np.int64)
    covered = np.full(n_series, np.nan)
    group[info_idx] = series.group
    covered[info_idx] = series.covered_until

    measured = _measure(raw_idx, raw.at, raw.price, raw.source, covered, lo, hi)
    filled = _fill(measured, group, n_series)
    out = _merge(measured, filled)
    keep = (out.bucket >= b0) & (out.bucket < b1)
    return CleanColumns(
        ids[out.series[keep]],
        out.bucket[keep] * BUCKET_SECONDS,
        out.price[keep],
        out.method[keep],
        out.confidence[keep],
        out.flags[keep],
    )


# -------------------------------------------------------------------------------------------- internals


@dataclass(frozen=True, eq=False)
class _Buckets:
    """Points on the bucket grid (``bucket`` is a bucket index), sorted by (series, bucket)."""

    series: I64
    bucket: I64
    price: F64
    method: I8
    confidence: F64
    flags: I8


def _empty() -> CleanColumns:
    return CleanColumns(
        np.empty(0, np.int64),
        np.empty(0, np.int64),
        np.empty(0, np.float64),
        np.empty(0, np.int8),
        np.empty(0, np.float64),
        np.empty(0, np.int8),
    )


def _run_starts(*keys: npt.NDArray[np.generic]) -> I64:
    """Indices where any of the (sorted) key arrays changes value, starting with 0."""
    n = len(keys[0])
    if n == 0:
        return np.empty(0, np.int64)
    change = np.zeros(n, np.bool_)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change)


def _measure(series: I64, at: F64, price: F64, source: I8, covered: F64, lo: float, hi: float) -> _Buckets:
    """Per-bucket measured values: each source's bucket value, then the sources reconciled."""
    order = np.lexsort((price, at, source, series))
    s, t, p, r = series[order], at[order], price[order], source[order]
    # The same report twice (a page ingested twice, or a retried write) counts once.
    first = _run_starts(s, r, t)
    s, t, p, r = s[first], t[first], p[first], r[first]

    same_next = np.zeros(len(s), np.bool_)
    same_next[:-1] = (s[1:] == s[:-1]) & (r[1:] == r[:-1])
    next_t = np.empty_like(t)
    next_t[:-1] = t[1:]
    cover = covered[s]
    last_end = np.where(np.isnan(cover), t, np.maximum(cover, t))
    end = np.where(same_next, next_t, last_end)
    end = np.where(r == RawSource.AWS_API, end, t)  # agent reports are point samples
    start = np.maximum(t, lo)
    end = np.minimum(end, hi)
    keep = (start < hi) & (end >= start) & ((end > start) | (t >= lo))
    s, t, p, r, start, end = s[keep], t[keep], p[keep], r[keep], start[keep], end[keep]

    size = BUCKET_SECONDS
    first_b = np.floor(start / size).astype(np.int64)
    last_b = np.where(end > start, np.ceil(end / size).astype(np.int64) - 1, first_b)
    last_b = np.maximum(last_b, first_b)
    n = last_b - first_b + 1
    seg = np.repeat(np.arange(len(s)), n)
    offsets = np.cumsum(n) - n
    k = first_b[seg] + (np.arange(len(seg)) - offsets[seg])
    k_start = k * size
    overlap = np.minimum(end[seg], k_start + size) - np.maximum(start[seg], k_start)
    overlap = np.maximum(overlap, 0.0)
    point = (end[seg] == start[seg]).astype(np.float64)
    seg_p = p[seg]
    # A raw timestamp inside the bucket makes it "observed"; otherwise it only carries a held price.
    observed = (t[seg] >= k_start) & (t[seg] < k_start + size)

    es, er = s[seg], r[seg]
    runs = _run_starts(es, er, k)
    # Means taken as offsets from the run's first price: a price held all bucket long comes out
    # exactly as stored, not as (p * w) / w.
    starts = np.zeros(len(seg), np.int64)
    starts[runs] = 1
    run_id = np.cumsum(starts) - 1
    base = seg_p[runs]
    delta = seg_p - base[run_id]
    weight = np.add.reduceat(overlap, runs)
    weighted = np.add.reduceat(overlap * delta, runs)
    count = np.add.reduceat(point, runs)
    point_sum = np.add.reduceat(point * delta, runs)
    value = base + np.where(
        weight > 0, weighted / np.where(weight > 0, weight, 1.0), point_sum / np.maximum(count, 1)
    )
    any_observed = np.maximum.reduceat(observed.astype(np.int8), runs) > 0
    src_s, src_r, src_k = es[runs], er[runs], k[runs]
    return _reconcile(src_s, src_k, src_r, value, any_observed)


def _reconcile(s: I64, k: I64, r: I8, value: F64, observed: Bool) -> _Buckets:
    """One value per (series, bucket) from the per-source values (DESIGN §7 precedence)."""
    order = np.lexsort((r, k, s))
    s, k, r, value, observed = s[order], k[order], r[order], value[order], observed[order]
    runs = _run_starts(s, k)
    size = np.diff(np.append(runs, len(s)))
    best = value[runs]
    has_second = size > 1
    second = value[np.where(has_second, runs + 1, runs)]
    disagree = has_second & (np.abs(second - best) > TOLERANCE * np.abs(best))
    price = np.where(disagree, (best + second) / 2.0, best)
    method = np.where(observed[runs], Method.OBSERVED, Method.HELD).astype(np.int8)
    method = np.where(disagree, np.int8(Method.AVERAGED), method).astype(np.int8)
    confidence = np.where(r[runs] == RawSource.AGENT_REPLICA, REPLICA_CONFIDENCE, CONFIDENCE[Method.OBSERVED])
    confidence = np.where(disagree, CONFIDENCE[Method.AVERAGED], confidence)
    flags = np.where(disagree, np.int8(Flag.DISAGREEMENT), np.int8(0)).astype(np.int8)
    return _Buckets(s[runs], k[runs], price, method, confidence, flags)


def _fill(m: _Buckets, group: I64, n_series: int) -> _Buckets:
    """Filled points for the gaps between measured buckets of the same series."""
    if len(m.series) < 2:
        return _Buckets(m.series[:0], m.bucket[:0], m.price[:0], m.method[:0], m.confidence[:0], m.flags[:0])
    left = np.flatnonzero((m.series[1:] == m.series[:-1]) & (m.bucket[1:] - m.bucket[:-1] > 1))
    missing = m.bucket[left + 1] - m.bucket[left] - 1
    fillable = missing <= LONG_GAP_BUCKETS
    left, missing = left[fillable], missing[fillable]
    gap = np.repeat(np.arange(len(left)), missing)
    offsets = np.cumsum(missing) - missing
    step = np.arange(len(gap)) - offsets[gap] + 1  # 1..missing
    j_left = left[gap]
    j_right = j_left + 1
    gap_missing = missing[gap]
    series = m.series[j_left]
    k = m.bucket[j_left] + step
    price = np.full(len(gap), np.nan)

    short = gap_missing <= SHORT_GAP_BUCKETS
    medium = ~short & (gap_missing <= MEDIUM_GAP_BUCKETS)
    long = gap_missing > MEDIUM_GAP_BUCKETS

    frac = step / (gap_missing + 1)
    linear = m.price[j_left] + (m.price[j_right] - m.price[j_left]) * frac
    price[short] = linear[short]
    price[medium] = _weighted(m, j_left[medium], k[medium], gap_missing[medium])
    price[long] = _cross_pool(m, group, n_series, series[long], k[long], j_left[long])

    method = np.select([short, medium], [Method.LINEAR, Method.WEIGHTED], Method.CROSS_POOL).astype(np.int8)
    confidence = np.select(
        [short, medium],
        [CONFIDENCE[Method.LINEAR], CONFIDENCE[Method.WEIGHTED]],
        CONFIDENCE[Method.CROSS_POOL],
    )
    known = ~np.isnan(price)
    return _Buckets(
        series[known],
        k[known],
        price[known],
        method[known],
        confidence[known],
        np.zeros(int(known.sum()), np.int8),
    )


def _weighted(m: _Buckets, j_left: I64, k: I64, gap_missing: I64) -> F64:
    """Inverse-distance weighted mean of the measured buckets within ``gap_missing`` of the gap."""
    total = np.zeros(len(k))
    weights = np.zeros(len(k))
    n = len(m.series)
    series = m.series[j_left]
    k_left = m.bucket[j_left]
    k_right = m.bucket[j_left + 1]
    for offset in range(MEDIUM_GAP_BUCKETS + 1):
        for j, lowest, highest in (
            (j_left - offset, k_left - gap_missing, k_left),
            (j_left + 1 + offset, k_right, k_right + gap_missing),
        ):
            inside = (j >= 0) & (j < n)
            jj = np.where(inside, j, 0)
            b = m.bucket[jj]
            ok = inside & (m.series[jj] == series) & (b >= lowest) & (b <= highest)
            w = np.where(ok, 1.0 / np.maximum(np.abs(k - b), 1), 0.0)
            total += w * m.price[jj]
            weights += w
    return total / weights  # the two neighbours always count, so weights > 0


def _cross_pool(m: _Buckets, group: I64, n_series: int, series: I64, k: I64, j_left: I64) -> F64:
    """The left neighbour's price times the siblings' median move since the left neighbour's bucket."""
    out = np.full(len(k), np.nan)
    if len(k) == 0:
        return out
    k_left = m.bucket[j_left]
    base = m.bucket.min()
    span = int(m.bucket.max() - base + 1)
    key = m.series * span + (m.bucket - base)  # sorted, because m is sorted by (series, bucket)

    members = np.argsort(group, kind="stable")
    member_group = group[members]
    gstart = np.searchsorted(member_group, group[series], side="left")
    gsize = np.searchsorted(member_group, group[series], side="right") - gstart
    gsize = np.where(group[series] < 0, 0, gsize)
    item = np.repeat(np.arange(len(k)), gsize)
    sibling = members[gstart[item] + (np.arange(len(item)) - (np.cumsum(gsize) - gsize)[item])]
    other = sibling != series[item]
    item, sibling = item[other], sibling[other]

    def lookup(at: I64) -> tuple[F64, Bool]:
        probe = sibling * span + (at - base)
        inside = (at >= base) & (at - base < span)
        pos = np.clip(np.searchsorted(key, probe), 0, len(key) - 1)
        found = inside & (key[pos] == probe)
        return m.price[pos], found

    now_price, now_found = lookup(k[item])
    then_price, then_found = lookup(k_left[item])
    usable = now_found & then_found & (then_price > 0)
    item = item[usable]
    ratio = now_price[usable] / then_price[usable]
    if len(item) == 0:
        return out
    order = np.lexsort((ratio, item))
    item, ratio = item[order], ratio[order]
    starts = _run_starts(item)
    counts = np.diff(np.append(starts, len(item)))
    median = (ratio[starts + (counts - 1) // 2] + ratio[starts + counts // 2]) / 2.0
    out[item[starts]] = m.price[j_left[item[starts]]] * median
    return out


def _merge(measured: _Buckets, filled: _Buckets) -> _Buckets:
    """Both inputs are sorted by (series, bucket) and never share a bucket: a linear merge."""
    if len(filled.series) == 0:
        return measured
    base = min(int(measured.bucket.min()), int(filled.bucket.min()))
    span = max(int(measured.bucket.max()), int(filled.bucket.max())) - base + 1
    m_key = measured.series * span + (measured.bucket - base)
    f_key = filled.series * span + (filled.bucket - base)
    f_at = np.searchsorted(m_key, f_key) + np.arange(len(f_key))
    total = len(m_key) + len(f_key)
    m_at = np.ones(total, np.bool_)
    m_at[f_at] = False

    def place(a: npt.NDArray[np.generic], b: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        out = np.empty(total, a.dtype)
        out[m_at] = a
        out[f_at] = b
        return out

    return _Buckets(
        place(measured.series, filled.series).astype(np.int64),
        place(measured.bucket, filled.bucket).astype(np.int64),
        place(measured.price, filled.price).astype(np.float64),
        place(measured.method, filled.method).astype(np.int8),
        place(measured.confidence, filled.confidence).astype(np.float64),
        place(measured.flags, filled.flags).astype(np.int8),
    )


def hold_context(since: float, until: float) -> tuple[float, float]:
    """The raw time range to load to clean ``[since, until)`` exactly (plus the last aws-api row before)."""
    return since - CONTEXT_SECONDS - BUCKET_SECONDS, until + CONTEXT_SECONDS + BUCKET_SECONDS


__all__: Sequence[str] = [
    "CONFIDENCE",
    "CONTEXT_SECONDS",
    "REPLICA_CONFIDENCE",
    "CleanColumns",
    "CleanPoint",
    "RawColumns",
    "RawPoint",
    "SeriesColumns",
    "SeriesInfo",
    "clean",
    "clean_columns",
    "hold_context",
]
