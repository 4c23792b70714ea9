"""Spot Advisor bands and their conversion to an hourly probability."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest

from spot_operator.decisions.advisor import (
    BAND_MONTHLY_FREQUENCY,
    HOURS_PER_MONTH,
    SpotAdvisor,
    band_hourly_rate,
    band_probability,
    maybe_load_advisor,
)
from spot_operator.decisions.datadir import ENV, DataMissing, data_dir

from .data import shared_advisor


def test_band_conversion_follows_the_stated_assumption() -> None:
    for band, monthly in enumerate(BAND_MONTHLY_FREQUENCY):
        # Constant hazard over a 730-hour month: surviving the month has probability 1 - f.
        assert math.exp(-band_hourly_rate(band) * HOURS_PER_MONTH) == pytest.approx(1 - monthly)
        assert band_probability(band, HOURS_PER_MONTH) == pytest.approx(monthly)
    probabilities = [band_probability(b) for b in range(5)]
    assert probabilities == sorted(probabilities) and probabilities[-1] < 0.001
    assert band_probability(4, 2.0) > band_probability(4, 1.0)
    assert band_probability(None) == band_probability(1) == band_probability(float("nan"))
    assert band_probability(9) == band_probability(4)


def test_a_small_document(tmp_path: Path) -> None:
    doc = {"spot_advisor": {"us-east-1": {"Linux": {"m5.large": {"s": 70, "r": 2}}, "Windows": {}}}}
    path = tmp_path / "advisor.json"
    path.write_text(json.dumps(doc))
    adv = SpotAdvisor.load(path)
    assert adv.band("us-east-1", "m5.large") == 2
    assert adv.savings_percent("us-east-1", "m5.large") == 70
    assert adv.entry("us-east-1", "m5.large", "Windows") is None
    assert adv.band("eu-west-1", "m5.large") is None
    with pytest.raises(ValueError, match="spot_advisor"):
        SpotAdvisor.from_json({"nothing": 1})


def test_missing_file_says_where_it_looked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(DataMissing, match=ENV):
        SpotAdvisor.load(missing)
    with caplog.at_level(logging.WARNING):
        assert maybe_load_advisor(missing) is None
    assert "default band" in caplog.text


def test_data_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv(ENV)
    assert data_dir().parts[-2:] == ("shared", "data")


def test_the_shared_snapshot() -> None:
    adv = SpotAdvisor.load(shared_advisor())
    assert len(adv.regions()) >= 30
    entry = adv.entry("us-east-1", "p3.2xlarge")
    assert entry is not None and 0 <= entry.band <= 4 and 0 < entry.savings_percent < 100
