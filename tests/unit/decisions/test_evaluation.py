"""Metrics in plain numpy, checked against hand values and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spot_operator.decisions.evaluation import (
    auc,
    brier,
    expected_calibration_error,
    log_loss,
    reliability,
    summary,
)


def test_log_loss_by_hand() -> None:
    assert log_loss([1, 0], [0.8, 0.2]) == pytest.approx(-math.log(0.8))
    assert log_loss([1], [0.0]) == pytest.approx(-math.log(1e-7))  # clipped, finite
    assert log_loss([1, 0, np.nan], [0.5, 0.5, 0.9]) == pytest.approx(math.log(2))  # NaN labels dropped


def test_auc_extremes_and_ties() -> None:
    assert auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert math.isnan(auc([1, 1], [0.2, 0.3]))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0])), min_size=2, max_size=40
    )
)
def test_auc_is_the_share_of_correctly_ordered_pairs(pairs: list[tuple[bool, float]]) -> None:
    y = np.array([float(a) for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    pos, neg = p[y == 1], p[y == 0]
    if not pos.size or not neg.size:
        assert math.isnan(auc(y, p))
        return
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    assert auc(y, p) == pytest.approx(wins / (pos.size * neg.size))


def test_reliability_bins_count_every_prediction_once() -> None:
    y = np.array([0, 0, 1, 1, 1, 0, 1])
    p = np.array([0.05, 0.15, 0.15, 0.95, 1.0, 0.55, 0.55])
    table = reliability(y, p, bins=10)
    assert sum(b.count for b in table) == y.size
    top = table[-1]
    assert (top.count, top.observed_rate) == (2, 1.0)
    assert table[1].observed_rate == 0.5 and table[1].mean_predicted == pytest.approx(0.15)
    assert expected_calibration_error([1, 0], [1.0, 0.0]) == 0.0
    assert brier([1, 0], [1.0, 0.0]) == 0.0


def test_summary_has_every_metric() -> None:
    s = summary([0, 1, 1, 0], [0.2, 0.7, 0.6, 0.4])
    assert set(s) == {"rows", "positive_rate", "log_loss", "auc", "brier", "ece"}
    assert s["rows"] == 4 and s["auc"] == 1.0
