"""The cleaning rules of DESIGN §7, one behaviour per test, on hand-made series."""

from __future__ import annotations

import pytest

from spot_operator.prices.cleaning import (
    CONFIDENCE,
    REPLICA_CONFIDENCE,
    CleanPoint,
    RawPoint,
    SeriesInfo,
    clean,
)
from spot_operator.prices.model import CleanSource, Flag, Method, RawSource

B = 300  # bucket
H = 3600
T0 = 1_653_998_400  # 2022-05-31T12:00:00Z, bucket-aligned

AWS = RawSource.AWS_API
PRIMARY = RawSource.AGENT_PRIMARY
REPLICA = RawSource.AGENT_REPLICA


def by_bucket(points: list[CleanPoint], series: int = 1) -> dict[int, CleanPoint]:
    return {(p.bucket - T0) // B: p for p in points if p.series == series}


# ------------------------------------------------------------------------------------ held prices


def test_a_quiet_aws_pool_has_a_known_price_until_its_next_change() -> None:
    # Ten quiet hours between two changes are not a gap: the first price was in force all along.
    points = [RawPoint(1, T0, 0.05), RawPoint(1, T0 + 10 * H, 0.07)]
    out = by_bucket(clean(points, [SeriesInfo(1, covered_until=T0 + 11 * H)], T0, T0 + 11 * H))

    assert len(out) == 11 * 12
    assert all(p.source is CleanSource.MEASURED for p in out.values())
    assert {p.price for k, p in out.items() if k < 120} == {0.05}
    assert {p.price for k, p in out.items() if k >= 120} == {0.07}
    assert out[0].method is Method.OBSERVED
    assert out[1].method is Method.HELD
    assert out[120].method is Method.OBSERVED
    assert out[121].method is Method.HELD
    assert {p.confidence for p in out.values()} == {1.0}


def test_a_held_price_stops_where_the_feed_stopped_being_watched() -> None:
    points = [RawPoint(1, T0, 0.05)]
    out = by_bucket(clean(points, [SeriesInfo(1, covered_until=T0 + H + 60)], T0, T0 + 5 * H))

    assert sorted(out) == list(range(13))  # 12 full buckets and the one the coverage ends in
    assert out[12].price == 0.05


def test_without_coverage_an_aws_price_measures_only_its_own_bucket() -> None:
    out = by_bucket(clean([RawPoint(1, T0 + 10, 0.05)], [SeriesInfo(1)], T0, T0 + H))
    assert sorted(out) == [0]


def test_a_bucket_with_a_change_is_the_time_weighted_mean_of_the_prices_in_force() -> None:
    # 0.10 in force from before the bucket, 0.20 from minute 4 of 5.
    points = [RawPoint(1, T0 - 2 * B, 0.10), RawPoint(1, T0 + 240, 0.20)]
    out = by_bucket(clean(points, [SeriesInfo(1, covered_until=T0 + H)], T0, T0 + H))

    assert out[0].price == pytest.approx((240 * 0.10 + 60 * 0.20) / 300)
    assert out[0].method is Method.OBSERVED
    assert out[1].price == 0.20


def test_the_price_in_force_before_the_window_is_held_into_it() -> None:
    points = [RawPoint(1, T0 - 3 * H, 0.05)]
    out = by_bucket(clean(points, [SeriesInfo(1, covered_until=T0 + H)], T0, T0 + H))
    assert len(out) == 12
    assert {p.method for p in out.values()} == {Method.HELD}


# -------------------------------------------------------------------------------------- precedence


def test_primary_and_replica_within_half_a_percent_keep_the_primary() -> None:
    points = [RawPoint(1, T0 + 10, 1.000, PRIMARY), RawPoint(1, T0 + 20, 1.004, REPLICA)]
    (p,) = clean(points, [], T0, T0 + B)
    assert (p.price, p.method, p.confidence, p.flags) == (1.000, Method.OBSERVED, 1.0, 0)


def test_primary_and_replica_further_apart_are_averaged_and_flagged() -> None:
    points = [RawPoint(1, T0 + 10, 1.00, PRIMARY), RawPoint(1, T0 + 20, 1.10, REPLICA)]
    (p,) = clean(points, [], T0, T0 + B)
    assert p.price == pytest.approx(1.05)
    assert p.method is Method.AVERAGED
    assert p.source is CleanSource.MEASURED
    assert p.flags == Flag.DISAGREEMENT
    assert p.confidence == CONFIDENCE[Method.AVERAGED] < REPLICA_CONFIDENCE


def test_a_bucket_only_a_replica_measured_has_the_replica_confidence() -> None:
    (p,) = clean([RawPoint(1, T0 + 10, 1.0, REPLICA)], [], T0, T0 + B)
    assert (p.method, p.confidence) == (Method.OBSERVED, 0.95)


def test_the_published_price_outranks_the_agents() -> None:
    points = [RawPoint(1, T0 + 10, 1.000, AWS), RawPoint(1, T0 + 20, 1.003, PRIMARY)]
    (p,) = clean(points, [SeriesInfo(1)], T0, T0 + B)
    assert p.price == 1.000
    assert p.confidence == 1.0


def test_only_the_two_best_sources_are_compared() -> None:
    # The replica is far off but the primary agrees with AWS: keep AWS.
    points = [
        RawPoint(1, T0 + 1, 1.0, AWS),
        RawPoint(1, T0 + 2, 1.001, PRIMARY),
        RawPoint(1, T0 + 3, 2.0, REPLICA),
    ]
    (p,) = clean(points, [SeriesInfo(1)], T0, T0 + B)
    assert p.price == 1.0
    assert p.flags == 0


def test_several_reports_of_one_source_in_a_bucket_are_averaged() -> None:
    points = [RawPoint(1, T0 + 10, 1.0, PRIMARY), RawPoint(1, T0 + 100, 1.2, PRIMARY)]
    (p,) = clean(points, [], T0, T0 + B)
    assert p.price == pytest.approx(1.1)


# -------------------------------------------------------------------------------------------- gaps


def agent_series(series: int, prices: dict[int, float]) -> list[RawPoint]:
    """Primary-agent reports in the middle of the given buckets."""
    return [RawPoint(series, T0 + k * B + 150, p, PRIMARY) for k, p in prices.items()]


def test_a_short_gap_is_a_straight_line() -> None:
    out = by_bucket(clean(agent_series(1, {0: 1.0, 3: 1.6}), [], T0, T0 + H))
    assert [out[k].price for k in (1, 2)] == pytest.approx([1.2, 1.4])
    assert {out[k].method for k in (1, 2)} == {Method.LINEAR}
    assert {out[k].confidence for k in (1, 2)} == {0.85}
    assert out[1].source is CleanSource.INTERPOLATED


def test_a_medium_gap_is_the_inverse_distance_weighted_mean_of_its_surroundings() -> None:
    # Gap of 3 buckets (4..6): the measured buckets within 3 of it on each side count.
    known = {0: 5.0, 1: 1.0, 2: 1.0, 3: 2.0, 7: 4.0, 8: 4.0, 10: 4.0, 11: 9.0}
    out = by_bucket(clean(agent_series(1, known), [], T0, T0 + H))
    for k in (4, 5, 6):
        near = {j: v for j, v in known.items() if 3 - 3 <= j <= 3 or 7 <= j <= 7 + 3}
        weights = {j: 1 / abs(k - j) for j in near}
        expected = sum(weights[j] * near[j] for j in near) / sum(weights.values())
        assert out[k].price == pytest.approx(expected)
        assert (out[k].method, out[k].confidence) == (Method.WEIGHTED, 0.75)


def test_a_long_gap_follows_the_median_move_of_the_sibling_zones() -> None:
    # Series 1 is silent for 2 hours; its three siblings moved +50 %, +10 % and -20 % meanwhile.
    own = agent_series(1, {0: 1.0, 25: 1.0})
    siblings = [
        RawPoint(2, T0, 2.0),
        RawPoint(2, T0 + H, 3.0),
        RawPoint(3, T0, 1.0),
        RawPoint(3, T0 + H, 1.1),
        RawPoint(4, T0, 5.0),
        RawPoint(4, T0 + H, 4.0),
    ]
    info = [SeriesInfo(1, 7), *(SeriesInfo(s, 7, T0 + 3 * H) for s in (2, 3, 4))]
    out = by_bucket(clean(own + siblings, info, T0, T0 + 3 * H))
    assert [out[k].price for k in (1, 11)] == pytest.approx([1.0, 1.0])  # siblings had not moved yet
    assert [out[k].price for k in (12, 24)] == pytest.approx([1.1, 1.1])  # median of 1.5, 1.1, 0.8
    assert {out[k].method for k in range(1, 25)} == {Method.CROSS_POOL}
    assert {out[k].confidence for k in range(1, 25)} == {0.70}


def test_siblings_are_only_series_of_the_same_group() -> None:
    own = agent_series(1, {0: 1.0, 25: 1.0})
    stranger = [RawPoint(2, T0, 2.0), RawPoint(2, T0 + H, 3.0)]
    out = by_bucket(clean(own + stranger, [SeriesInfo(1, 7), SeriesInfo(2, 8, T0 + 3 * H)], T0, T0 + 3 * H))
    assert sorted(out) == [0, 25]


def test_a_long_gap_without_siblings_stays_empty() -> None:
    out = by_bucket(clean(agent_series(1, {0: 1.0, 25: 1.0}), [SeriesInfo(1, 7)], T0, T0 + 3 * H))
    assert sorted(out) == [0, 25]


def test_a_gap_longer_than_four_hours_stays_empty_even_with_siblings() -> None:
    own = agent_series(1, {0: 1.0, 50: 1.0})  # 49 missing buckets: 4 h 05
    sibling = [RawPoint(2, T0, 2.0)]
    out = by_bucket(clean(own + sibling, [SeriesInfo(1, 7), SeriesInfo(2, 7, T0 + 6 * H)], T0, T0 + 6 * H))
    assert sorted(out) == [0, 50]


def test_a_gap_of_exactly_four_hours_is_filled() -> None:
    own = agent_series(1, {0: 1.0, 49: 1.0})  # 48 missing buckets
    sibling = [RawPoint(2, T0, 2.0)]
    out = by_bucket(clean(own + sibling, [SeriesInfo(1, 7), SeriesInfo(2, 7, T0 + 6 * H)], T0, T0 + 6 * H))
    assert sorted(out) == list(range(50))


def test_an_open_ended_gap_is_never_filled() -> None:
    out = by_bucket(clean(agent_series(1, {0: 1.0, 1: 1.0}), [], T0, T0 + H))
    assert sorted(out) == [0, 1]


def test_the_window_is_cut_after_filling_with_the_context_around_it() -> None:
    # The gap's anchors lie outside the window; its filled buckets inside the window are returned.
    out = by_bucket(clean(agent_series(1, {0: 1.0, 3: 1.6}), [], T0 + B, T0 + 3 * B))
    assert sorted(out) == [1, 2]
    assert out[1].method is Method.LINEAR


def test_reports_received_twice_count_once() -> None:
    points = agent_series(1, {0: 1.0, 3: 1.6})
    assert clean(points * 2, [], T0, T0 + H) == clean(points, [], T0, T0 + H)
