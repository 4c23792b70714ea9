"""XGBoostScorer on a model trained in a fixture from a slice of the real traces."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
import xgboost as xgb

from spot_operator.decisions.advisor import SpotAdvisor
from spot_operator.decisions.features import FEATURES, features_at, to_epoch
from spot_operator.decisions.history import StaticHistory
from spot_operator.decisions.training import Samples, TrainingReport, histories_from_scenario, predict
from spot_operator.decisions.xgb import ModelLoadError, XGBoostScorer, convert_horizon, load_booster
from spot_operator.ports import ScoringContext
from spot_operator.simulation.traces import Scenario

from .data import shared_advisor


def test_bytes_round_trip_predicts_the_same(small_model: TrainingReport, slice_samples: Samples) -> None:
    scorer = XGBoostScorer.from_bytes(small_model.payload, "v1", StaticHistory())
    direct = predict(load_booster(small_model.payload, nthread=2), slice_samples.values[:500])
    np.testing.assert_allclose(scorer.predict(slice_samples.values[:500]), direct, rtol=1e-6)
    assert ((direct >= 0) & (direct <= 1)).all()


def test_scores_every_pool_from_its_history(small_model: TrainingReport, trace_slice: list[Scenario]) -> None:
    scenario = trace_slice[0]
    histories = histories_from_scenario(scenario, SpotAdvisor.load(shared_advisor()))
    scorer = XGBoostScorer.from_bytes(small_model.payload, "v1", StaticHistory(histories))
    now = scenario.start + timedelta(days=2)
    scores = scorer.score(list(scenario.pools), now)
    assert set(scores) == set(scenario.pools)
    assert all(0.0 <= s.risk <= 1.0 for s in scores.values())
    matrix = features_at(histories, list(scenario.pools), to_epoch(now))
    np.testing.assert_allclose([scores[p].risk for p in scenario.pools], scorer.predict(matrix.values))
    longer = scorer.score(list(scenario.pools), now, ScoringContext(now, horizon_hours=4.0))
    assert all(longer[p].risk >= scores[p].risk for p in scenario.pools)


def test_horizon_conversion() -> None:
    p = np.array([0.0, 0.1, 0.5, 0.99])
    np.testing.assert_allclose(convert_horizon(p, 1.0, 1.0), p)
    two = convert_horizon(p, 1.0, 2.0)
    np.testing.assert_allclose(two, 1 - (1 - p) ** 2)
    np.testing.assert_allclose(convert_horizon(two, 2.0, 1.0), p, atol=1e-9)


def test_what_is_not_a_usable_model_is_refused() -> None:
    with pytest.raises(ModelLoadError, match="not an xgboost model"):
        load_booster(b"\x00garbage" * 20)
    x = np.random.default_rng(0).random((50, 3))
    other = xgb.train({"objective": "binary:logistic", "nthread": 1}, xgb.DMatrix(x, label=x[:, 0] > 0.5), 2)
    with pytest.raises(ModelLoadError, match="features"):
        XGBoostScorer(other, "v0", StaticHistory())
    booster = xgb.train(
        {"objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(np.zeros((4, len(FEATURES))), label=[0, 1, 0, 1]),
        1,
    )
    scorer = XGBoostScorer(booster, "v0", StaticHistory())
    with pytest.raises(ValueError, match="features"):
        scorer.predict(np.zeros((2, len(FEATURES) + 1)))
