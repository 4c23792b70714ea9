"""Pure feature building: hand-computed values, causality, prices (synthetic and the real feed's shape)."""

from __future__ import annotations

import csv
import gzip
import math
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spot_operator.decisions.features import (
    FEATURES,
    INDEX,
    AvailabilityHistory,
    PoolHistory,
    PriceHistory,
    features_at,
    pool_features,
    siblings_of,
    to_epoch,
)
from spot_operator.planning.model import Pool

from .data import require_data

A = Pool("m5.large", "us-east-1a")
B = Pool("m5.large", "us-east-1b")
OTHER_TYPE = Pool("c5.large", "us-east-1b")
# 12 ticks of 10 minutes: up 30 min, down 20 min, up 70 min.
SAMPLES = [1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1]


def _av(samples: list[int] = SAMPLES, start: float = 0.0) -> AvailabilityHistory:
    return AvailabilityHistory.from_samples(start, 600, samples)


def test_changes_interruptions_and_recoveries() -> None:
    av = _av()
    assert av.times.tolist() == [0.0, 1800.0, 3000.0]
    assert av.values.tolist() == [True, False, True]
    assert av.end == 7200.0
    assert av.interruptions.tolist() == [1800.0]
    assert av.recoveries.tolist() == [3000.0]
    with pytest.raises(ValueError):
        av.times[0] = 5.0  # read-only: a frozen input stays frozen


def test_hand_computed_features_at_one_hour() -> None:
    """At t = 3600: reclaimed at 1800 (0.5 h ago), back at 3000 (1/6 h ago); up 1800 + 600 s of 3600."""
    row = pool_features(PoolHistory(A, _av()), [3600.0])[0]
    assert row[INDEX["hours_since_interruption"]] == pytest.approx(0.5)
    assert row[INDEX["hours_since_recovery"]] == pytest.approx(1 / 6)
    assert row[INDEX["interruptions_24h"]] == 1
    assert row[INDEX["available_share_1h"]] == pytest.approx(2400 / 3600)
    assert row[INDEX["available_share_6h"]] == pytest.approx(2400 / 3600)  # only the observed hour counts
    assert row[INDEX["hour_of_day"]] == pytest.approx(1.0)
    assert row[INDEX["day_of_week"]] == 3  # 1970-01-01 was a Thursday
    assert math.isnan(row[INDEX["sibling_available_share"]])
    assert math.isnan(row[INDEX["advisor_band"]])


def test_while_unavailable_and_outside_observation() -> None:
    av = _av()
    assert av.state_at([2000.0, -1.0, 9000.0])[0] == 0.0
    assert np.isnan(av.state_at([-1.0, 9000.0])).all()
    assert av.hours_since_recovery([2000.0])[0] == 0.0
    row = pool_features(PoolHistory(A, _av()), [-10.0])[0]
    assert np.isnan(row[INDEX["hours_since_interruption"]])
    assert np.isnan(row[INDEX["available_share_1h"]])


def test_labels_look_forward_exactly_one_horizon() -> None:
    av = _av()
    labels = av.interruption_within([1200.0, 1800.0, 100.0, 4000.0], 3600.0)
    assert labels[:3].tolist() == [1.0, 0.0, 1.0]  # a reclaim at exactly t is in the past
    assert np.isnan(labels[3])  # 4000 + 3600 is past the end of observation


def test_no_interruption_yet_is_censored_at_the_start() -> None:
    av = _av([1, 1, 1, 1], start=1000.0)
    assert av.hours_since_interruption([1000.0 + 1800])[0] == pytest.approx(0.5)
    assert av.count_interruptions([3000.0], 86400)[0] == 0


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 2), min_size=3, max_size=60), st.data())
def test_features_never_look_ahead(samples: list[int], data: st.DataObject) -> None:
    """Rewriting everything after t changes no feature at t."""
    k = data.draw(st.integers(0, len(samples) - 1))
    future = data.draw(
        st.lists(st.integers(0, 2), min_size=len(samples) - k - 1, max_size=len(samples) - k - 1)
    )
    t = k * 600.0
    other = [*samples[: k + 1], *future]
    sib = PoolHistory(B, AvailabilityHistory.from_samples(0, 600, samples[::-1]))
    sib_other = PoolHistory(B, AvailabilityHistory.from_samples(0, 600, [*samples[::-1][: k + 1], *future]))
    a = pool_features(PoolHistory(A, AvailabilityHistory.from_samples(0, 600, samples)), [t], [sib])
    b = pool_features(PoolHistory(A, AvailabilityHistory.from_samples(0, 600, other)), [t], [sib_other])
    np.testing.assert_array_equal(a, b)


def test_siblings_are_the_same_type_in_other_zones() -> None:
    up = AvailabilityHistory.from_samples(0, 600, [1] * 12)
    down = AvailabilityHistory.from_samples(0, 600, [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    histories = {
        A: PoolHistory(A, up),
        B: PoolHistory(B, down),
        OTHER_TYPE: PoolHistory(OTHER_TYPE, up),
        Pool("m5.large", "us-east-1c"): PoolHistory(Pool("m5.large", "us-east-1c"), up),
    }
    assert [h.pool.zone for h in siblings_of(A, histories)] == ["us-east-1b", "us-east-1c"]
    m = features_at(histories, [A, Pool("m5.large", "us-east-1d")], 3600.0)
    assert m.values.shape == (2, len(FEATURES))
    assert m.column("sibling_available_share")[0] == pytest.approx(0.5)
    assert m.column("sibling_interruptions_6h")[0] == pytest.approx(0.5)  # one reclaim among two siblings
    assert np.isnan(m.column("available_share_1h")[1])  # no history for that pool: unknown, not zero


def test_price_features() -> None:
    """Two hours at 1.0 then 3.0 from t=3600: over the day to 7200 the mean is 2 and the deviation 1."""
    prices = PriceHistory(np.array([0.0, 3600.0]), np.array([1.0, 3.0]))
    history = PoolHistory(A, None, prices, on_demand_price=4.0, advisor_band=2)
    row = pool_features(history, [7200.0])[0]
    assert row[INDEX["price_vs_on_demand"]] == pytest.approx(0.75)
    assert row[INDEX["price_volatility_24h"]] == pytest.approx(0.5)
    assert row[INDEX["advisor_band"]] == 2
    flat = PriceHistory(np.array([0.0, 100.0, 5000.0]), np.array([2.0, 2.0, 2.0]))
    assert flat.volatility([9000.0], 86400)[0] == 0.0
    assert np.isnan(flat.price_at([-1.0])[0])


def test_same_instant_prices_keep_the_last_reported() -> None:
    prices = PriceHistory(np.array([10.0, 0.0, 10.0]), np.array([1.0, 5.0, 2.0]))
    assert prices.times.tolist() == [0.0, 10.0]
    assert prices.price_at([20.0])[0] == 2.0


def test_real_describe_spot_price_rows_have_the_feed_shape() -> None:
    """The shared DescribeSpotPriceHistory rows: irregular times, several products per pool, quiet pools."""
    from spot_operator.decisions.datadir import prices_path

    path = require_data(prices_path())
    series: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for zone_id, instance_type, product, price, stamp in csv.reader(fh, delimiter="\t"):
            at = to_epoch(datetime.fromisoformat(stamp.replace("Z", "+00:00")))
            series.setdefault((zone_id, instance_type, product), []).append((at, float(price)))
    busiest = max(series, key=lambda k: len(series[k]))
    points = sorted(series[busiest])
    history = PriceHistory(np.array([t for t, _ in points]), np.array([p for _, p in points]))
    end = points[-1][0] + 60
    assert history.price_at([end])[0] == points[-1][1]
    cv = history.volatility([end], 86400)[0]
    assert 0.0 <= cv < 1.0
    assert len(series) > 1000  # thousands of (zone, type, product) series in six hours


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 1), min_size=2, max_size=40), min_size=1, max_size=4),
    st.floats(-1000, 30000),
    st.booleans(),
)
def test_the_scoring_path_equals_the_batch_path(series: list[list[int]], t: float, with_prices: bool) -> None:
    """features_at (scalar, one time) and pool_features (numpy, many times) agree on every value."""
    zones = "abcd"
    prices = PriceHistory(np.array([0.0, 700.0, 5000.0]), np.array([1.0, 1.3, 0.9])) if with_prices else None
    histories = {
        Pool("m5.large", f"us-east-1{zones[i]}"): PoolHistory(
            Pool("m5.large", f"us-east-1{zones[i]}"),
            AvailabilityHistory.from_samples(0, 600, s),
            prices,
            2.0,
            i,
        )
        for i, s in enumerate(series)
    }
    histories[OTHER_TYPE] = PoolHistory(OTHER_TYPE, AvailabilityHistory.from_samples(0, 600, series[0]))
    pools = [*histories, Pool("m5.large", "us-east-1z")]
    fast = features_at(histories, pools, t).values
    for i, pool in enumerate(pools):
        slow = pool_features(histories.get(pool) or PoolHistory(pool), [t], siblings_of(pool, histories))[0]
        np.testing.assert_allclose(fast[i], slow, rtol=1e-12, atol=1e-12, equal_nan=True)
