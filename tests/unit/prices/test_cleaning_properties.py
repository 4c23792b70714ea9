"""Properties of cleaning over arbitrary series (hypothesis)."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spot_operator.prices.cleaning import (
    CONFIDENCE,
    CONTEXT_SECONDS,
    LONG_GAP_BUCKETS,
    REPLICA_CONFIDENCE,
    CleanPoint,
    RawPoint,
    SeriesInfo,
    clean,
)
from spot_operator.prices.model import CleanSource, Method, RawSource

B = 300
T0 = 1_650_000_000 - 1_650_000_000 % B
SPAN = 12 * 3600

points_strategy = st.lists(
    st.builds(
        RawPoint,
        series=st.integers(1, 4),
        at=st.integers(T0, T0 + SPAN).map(float),
        price=st.floats(0.01, 10.0, allow_nan=False),
        source=st.sampled_from(list(RawSource)),
    ),
    max_size=80,
)
coverage_strategy = st.lists(
    st.one_of(st.none(), st.integers(T0, T0 + SPAN + 3600).map(float)), min_size=4, max_size=4
)


def infos(points: list[RawPoint], coverage: list[float | None]) -> list[SeriesInfo]:
    """Series 1-3 are sibling zones, series 4 has none. As ingestion guarantees, an aws-api series is
    covered at least up to its newest row."""
    out = []
    for s in range(1, 5):
        newest = max((p.at for p in points if p.series == s and p.source is RawSource.AWS_API), default=None)
        cover = coverage[s - 1]
        if newest is not None:
            cover = newest if cover is None else max(cover, newest)
        out.append(SeriesInfo(s, 7 if s < 4 else -1, cover))
    return out


def run(
    points: list[RawPoint],
    coverage: list[float | None],
    since: float = T0,
    until: float = T0 + SPAN,
    all_points: list[RawPoint] | None = None,
) -> list[CleanPoint]:
    return clean(points, infos(all_points if all_points is not None else points, coverage), since, until)


@settings(max_examples=150, deadline=None)
@given(points_strategy, coverage_strategy)
def test_no_filled_point_lies_beyond_the_four_hour_limit(
    points: list[RawPoint], coverage: list[float | None]
) -> None:
    # Clean past the data on both sides, so that every anchor is in the output.
    out = run(points, coverage, T0 - CONTEXT_SECONDS, T0 + SPAN + CONTEXT_SECONDS)
    by_series: dict[int, dict[int, CleanPoint]] = defaultdict(dict)
    for p in out:
        by_series[p.series][p.bucket // B] = p
    for buckets in by_series.values():
        for k, p in buckets.items():
            if p.source is not CleanSource.INTERPOLATED:
                continue
            # The nearest measured buckets on either side bound a gap of at most 4 hours. (A long gap
            # may be filled only in part: cross-pool fills need a sibling measured at that bucket.)
            measured = {j for j, q in buckets.items() if q.source is CleanSource.MEASURED}
            left = max((j for j in measured if j < k), default=None)
            right = min((j for j in measured if j > k), default=None)
            assert left is not None, "a filled point needs a measured point before it"
            assert right is not None, "a filled point needs a measured point after it"
            assert right - left - 1 <= LONG_GAP_BUCKETS


@settings(max_examples=150, deadline=None)
@given(points_strategy, coverage_strategy)
def test_every_point_says_how_it_was_made(points: list[RawPoint], coverage: list[float | None]) -> None:
    for p in run(points, coverage):
        assert isinstance(p.method, Method)
        assert p.source is p.method.source
        expected = {CONFIDENCE[p.method]} | ({REPLICA_CONFIDENCE} if p.method is Method.OBSERVED else set())
        assert p.confidence in expected
        assert np.isfinite(p.price)
        assert p.price > 0
        assert p.bucket % B == 0
        assert T0 <= p.bucket < T0 + SPAN


@settings(max_examples=100, deadline=None)
@given(points_strategy, coverage_strategy, st.randoms(use_true_random=False))
def test_cleaning_twice_equals_cleaning_once(
    points: list[RawPoint], coverage: list[float | None], rnd: random.Random
) -> None:
    # The same rows again, in another order (a page re-ingested, a retried write) change nothing.
    again = points + points
    rnd.shuffle(again)
    assert run(again, coverage) == run(points, coverage)


@settings(max_examples=100, deadline=None)
@given(points_strategy, coverage_strategy, st.integers(0, SPAN // B), st.integers(1, SPAN // B))
def test_a_window_cleaned_with_its_context_equals_that_window_of_a_full_clean(
    points: list[RawPoint], coverage: list[float | None], start: int, length: int
) -> None:
    since = T0 + start * B
    until = min(since + length * B, T0 + SPAN)
    full = [p for p in run(points, coverage) if since <= p.bucket < until]
    # What the job loads: rows within the context, plus each aws series' last row before it.
    lo, hi = since - CONTEXT_SECONDS - B, until + CONTEXT_SECONDS + B
    loaded = [p for p in points if lo <= p.at < hi]
    for s in range(1, 5):
        before = [p for p in points if p.series == s and p.source is RawSource.AWS_API and p.at < lo]
        if before:
            last = max(p.at for p in before)
            loaded += [p for p in before if p.at == last]
    # The job reads coverage from its table, which knows about rows it did not load.
    assert run(loaded, coverage, since, until, all_points=points) == full


@settings(max_examples=100, deadline=None)
@given(points_strategy, coverage_strategy)
def test_short_and_medium_fills_stay_between_the_prices_around_them(
    points: list[RawPoint], coverage: list[float | None]
) -> None:
    out = run(points, coverage)
    measured = [p.price for p in out if p.source is CleanSource.MEASURED]
    for p in out:
        if p.method in (Method.LINEAR, Method.WEIGHTED):
            assert min(measured) - 1e-12 <= p.price <= max(measured) + 1e-12


@settings(max_examples=100, deadline=None)
@given(points_strategy, coverage_strategy)
def test_measured_buckets_are_the_buckets_with_data_or_a_held_aws_price(
    points: list[RawPoint], coverage: list[float | None]
) -> None:
    out = run(points, coverage)
    measured = {(p.series, p.bucket) for p in out if p.source is CleanSource.MEASURED}
    expected = {(p.series, int(p.at) // B * B) for p in points if p.at < T0 + SPAN}
    # An aws-api price also measures every bucket it is in force for: up to the next aws-api
    # change of its series, the last one up to the series' coverage.
    for info in infos(points, coverage):
        times = sorted({p.at for p in points if p.series == info.series and p.source is RawSource.AWS_API})
        if not times:
            continue
        ends = [*times[1:], info.covered_until or 0.0]
        for start, end in zip(times, ends, strict=True):
            k = int(start) // B
            while k * B < min(end, T0 + SPAN):
                expected.add((info.series, k * B))
                k += 1
    assert measured == expected
