"""RuleScorer: each input moves the risk the way the rules say, and the scorer answers for every pool."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spot_operator.decisions.features import (
    FEATURES,
    INDEX,
    AvailabilityHistory,
    PoolHistory,
    PriceHistory,
    to_epoch,
)
from spot_operator.decisions.history import StaticHistory
from spot_operator.decisions.rules import RuleParameters, RuleScorer, rule_risk
from spot_operator.planning.model import Pool
from spot_operator.ports import ScoringContext

BASE = {
    "hours_since_interruption": 10.0,
    "hours_since_recovery": 10.0,
    "interruptions_24h": 2.0,
    "available_share_24h": 0.9,
    "sibling_interruptions_6h": 0.0,
    "price_volatility_24h": 0.0,
    "advisor_band": 1.0,
}


def row(**changes: float) -> np.ndarray:
    x = np.full((1, len(FEATURES)), np.nan)
    for name, value in {**BASE, **changes}.items():
        x[0, INDEX[name]] = value
    return x


def risk(**changes: float) -> float:
    return float(rule_risk(row(**changes))[0])


def test_each_signal_moves_the_risk_the_stated_way() -> None:
    assert risk(interruptions_24h=8) > risk(interruptions_24h=2) > risk(interruptions_24h=0)
    assert risk(hours_since_recovery=0.1) > risk(hours_since_recovery=3) > risk(hours_since_recovery=20)
    assert risk(price_volatility_24h=0.2) > risk()
    assert risk(sibling_interruptions_6h=3) > risk()
    assert risk(interruptions_24h=0, available_share_24h=1, advisor_band=4) > risk(
        interruptions_24h=0, available_share_24h=1, advisor_band=0
    )
    # An instance that has run for 20 hours proves the pool held that long.
    young = float(rule_risk(row(hours_since_recovery=np.nan), np.array([0.0]))[0])
    old = float(rule_risk(row(hours_since_recovery=np.nan), np.array([20.0]))[0])
    assert young > old


def test_a_day_of_observation_outweighs_the_advisor() -> None:
    quiet = risk(interruptions_24h=0, available_share_24h=1.0, hours_since_recovery=50)
    busy = risk(interruptions_24h=12, available_share_24h=0.5, hours_since_recovery=50)
    assert quiet < 0.01 < 0.2 < busy


def test_longer_horizons_mean_more_risk() -> None:
    x = row()
    assert rule_risk(x, None, RuleParameters(), 2.0)[0] > rule_risk(x, None, RuleParameters(), 1.0)[0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(0, 200)), min_size=len(FEATURES), max_size=len(FEATURES)))
def test_risk_is_always_a_probability(values: list[float | None]) -> None:
    x = np.array([[np.nan if v is None else v for v in values]])
    x[0, INDEX["available_share_24h"]] = min(np.nan_to_num(x[0, INDEX["available_share_24h"]]), 1.0)
    r = rule_risk(x)
    assert r.shape == (1,) and 0.0 <= r[0] <= RuleParameters().max_risk


def test_the_scorer_answers_for_every_pool_with_the_latest_price() -> None:
    a, b, c = (Pool("m5.large", z) for z in ("us-east-1a", "us-east-1b", "us-east-1c"))
    start = to_epoch(datetime(2026, 1, 1, tzinfo=UTC))
    flaky = AvailabilityHistory.from_samples(start, 600, [1, 1, 1, 1, 1, 0] * 24)  # reclaimed hourly
    steady = AvailabilityHistory.from_samples(start, 600, [1] * 144)
    prices = PriceHistory(np.array([start, start + 3600]), np.array([0.03, 0.04]))
    scorer = RuleScorer(StaticHistory([PoolHistory(a, flaky, prices), PoolHistory(b, steady, prices)]))
    now = datetime(2026, 1, 1, 23, 45, tzinfo=UTC)
    scores = scorer.score([a, b, c], now)
    assert set(scores) == {a, b, c}
    assert scores[a].risk > scores[b].risk
    assert scores[a].expected_price == 0.04 and scores[c].expected_price is None
    longer = scorer.score([a], now, ScoringContext(now, horizon_hours=3.0))
    assert longer[a].risk > scores[a].risk
    aged = scorer.score([c], now, ScoringContext(now, instance_age_seconds={c: 48 * 3600.0}))
    fresh = scorer.score([c], now, ScoringContext(now, instance_age_seconds={c: 360.0}))
    assert aged[c].risk < fresh[c].risk
    assert scorer.version.startswith("rules-1") and scorer.name == "rules"
    assert 0 < scores[b].risk < 0.05 < scores[a].risk < 0.99
