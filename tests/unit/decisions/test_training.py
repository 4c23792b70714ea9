"""Samples, the time-based split and the training report."""

from __future__ import annotations

import numpy as np
import pytest

from spot_operator.decisions.evaluation import log_loss
from spot_operator.decisions.features import HOUR, AvailabilityHistory, PoolHistory
from spot_operator.decisions.training import (
    Samples,
    TrainingReport,
    TrainParams,
    concat,
    fit,
    format_report,
    predict,
    samples_from_histories,
    time_split,
    train_and_evaluate,
)
from spot_operator.decisions.xgb import load_booster
from spot_operator.planning.model import Pool

FLAKY = Pool("m5.large", "us-east-1a")
STEADY = Pool("m5.large", "us-east-1b")


def synthetic(days: int = 6, start: float = 0.0, seed: int = 0) -> dict[Pool, PoolHistory]:
    """One pool reclaimed a few times an hour at random, one almost never: a signal any model must find."""
    rng = np.random.default_rng(seed)
    ticks = days * 144
    flaky = (rng.random(ticks) > 0.25).astype(int)
    steady = (rng.random(ticks) > 0.002).astype(int)
    return {
        FLAKY: PoolHistory(FLAKY, AvailabilityHistory.from_samples(start, 600, flaky), advisor_band=2),
        STEADY: PoolHistory(STEADY, AvailabilityHistory.from_samples(start, 600, steady), advisor_band=2),
    }


def test_samples_are_available_pools_with_their_future() -> None:
    histories = synthetic()
    s = samples_from_histories(histories, horizon_hours=1.0, step_seconds=600.0, warmup_hours=24.0)
    assert len(s) > 0 and s.values.shape == (len(s), 13)
    assert s.times.min() >= 24 * HOUR
    assert s.times.max() <= 6 * 24 * HOUR - HOUR
    # Labels agree with the availability history they came from.
    flaky_only = samples_from_histories({FLAKY: histories[FLAKY]})
    av = histories[FLAKY].availability
    assert av is not None
    np.testing.assert_array_equal(flaky_only.labels, av.interruption_within(flaky_only.times, HOUR))
    assert (av.state_at(flaky_only.times) == 1.0).all()


def test_time_split_holds_out_the_end_of_each_group() -> None:
    early = samples_from_histories(synthetic(start=0.0), group_name="early")
    late = samples_from_histories(synthetic(start=1e8, seed=1), group_name="late")
    both = concat([early, late, samples_from_histories(synthetic(start=5e4, seed=2), group_name="early")])
    assert both.group_names == ("early", "late")
    train, valid = time_split(both, 0.25)
    assert len(train) + len(valid) == len(both)
    for g in (0, 1):
        assert train.times[train.groups == g].max() < valid.times[valid.groups == g].min()
    share = len(valid) / len(both)
    assert 0.15 < share < 0.35
    with pytest.raises(ValueError):
        time_split(both, 1.0)


def test_a_model_finds_a_plain_signal_and_beats_the_base_rate() -> None:
    train = samples_from_histories(synthetic(days=8, seed=3))
    held = samples_from_histories(synthetic(days=4, start=1e7, seed=4))
    booster = fit(train, TrainParams(rounds=40, seed=1))
    p = predict(booster, held.values)
    flaky_rows = held.values[:, 3] < 0.99  # available_share_1h: the flaky pool rarely has a clean hour
    assert p[flaky_rows].mean() > p[~flaky_rows].mean()
    assert log_loss(held.labels, p) < log_loss(held.labels, np.full(len(held), train.labels.mean()))


def test_training_is_deterministic_for_a_seed() -> None:
    samples = samples_from_histories(synthetic())
    a = train_and_evaluate(samples, TrainParams(rounds=20, seed=5))
    b = train_and_evaluate(samples, TrainParams(rounds=20, seed=5))
    assert a.payload == b.payload and a.metrics == b.metrics


def test_the_report_on_a_slice_of_real_traces(small_model: TrainingReport, slice_samples: Samples) -> None:
    assert small_model.rows_train + small_model.rows_valid == len(slice_samples)
    assert set(small_model.metrics) == {"xgboost", "rules", "base_rate"}
    for scores in small_model.metrics.values():
        assert scores["rows"] == small_model.rows_valid
        assert 0 < scores["log_loss"] < 5
    assert small_model.metrics["base_rate"]["auc"] == 0.5
    assert sum(b.count for b in small_model.reliability["xgboost"]) == small_model.rows_valid
    assert small_model.data_from is not None and small_model.data_to is not None
    assert small_model.data_from < small_model.data_to
    assert "valid_xgboost_auc" in small_model.flat_metrics()
    text = format_report(small_model)
    assert "log-loss" in text and "reliability (xgboost)" in text and "rules" in text
    load_booster(small_model.payload)
