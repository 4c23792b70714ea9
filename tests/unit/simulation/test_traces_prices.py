"""Trace files, scenarios, tiling for benchmarks, and simulated prices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spot_operator.decisions.advisor import SpotAdvisor
from spot_operator.decisions.datadir import DataMissing
from spot_operator.planning.model import Pool
from spot_operator.simulation.prices import advisor_prices, load_price_series, merge_prices, on_demand_prices
from spot_operator.simulation.traces import SIMULATED_REGION, TYPE_BY_TAG, load_traces, scenarios, tiled

from ..decisions.data import shared_advisor, shared_traces
from .test_simulator import write_trace


def test_multi_region_data_sets_become_one_simulated_region(tmp_path: Path) -> None:
    ds = "preemption/4-node/aws-08-03-2023"
    write_trace(tmp_path, ds, "us-west-2c", "v100_1", [4, 4, 0, 3], gap=300)
    write_trace(tmp_path, ds, "us-east-1f", "v100_1", [4, 0, 0, 4, 4, 4], gap=300)
    (s,) = scenarios(load_traces(tmp_path))
    assert s.region == SIMULATED_REGION and s.zones == ("us-sim-1a", "us-sim-1b")
    assert s.original_zone == {
        Pool("p3.2xlarge", "us-sim-1a"): "us-east-1f",
        Pool("p3.2xlarge", "us-sim-1b"): "us-west-2c",
    }
    assert s.original_region(Pool("p3.2xlarge", "us-sim-1b")) == "us-west-2"
    assert s.ticks == 4 and s.duration_seconds == 1200  # the common length
    assert "replayed as zones" in s.note and "common 4" in s.note
    assert s.start.isoformat() == "2023-08-03T00:00:00+00:00"
    assert s.availability(Pool("p3.2xlarge", "us-sim-1b"), min_available=4).values.tolist() == [True, False]


def test_bad_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    write_trace(tmp_path, "x/aws-01-01-2024", "us-east-1a", "h100_9", [1])
    with pytest.raises(ValueError, match="unknown instance tag"):
        load_traces(tmp_path)
    with pytest.raises(DataMissing):
        load_traces(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no trace files"):
        load_traces(tmp_path / "empty")


def test_the_shared_traces() -> None:
    found = scenarios(load_traces(shared_traces()))
    assert {s.instance_type for s in found} <= set(TYPE_BY_TAG.values())
    assert len(found) == 8
    for s in found:
        assert len(s.pools) >= 2 and s.duration_seconds > 5 * 86400


def test_tiling_builds_a_long_wide_scenario_from_real_traces() -> None:
    found = [s for s in scenarios(load_traces(shared_traces())) if s.instance_type == "p3.2xlarge"]
    big = tiled(found, days=45, zones=9)
    assert len(big.pools) == 9 and big.duration_seconds == pytest.approx(45 * 86400, rel=1e-3)
    assert all(len(c) == big.ticks for c in big.counts.values())
    # Different zones replay different traces.
    assert len({c[:500].tobytes() for c in big.counts.values()}) > 5


def test_advisor_prices() -> None:
    ds = shared_traces()
    (s,) = [x for x in scenarios(load_traces(ds)) if x.dataset == "preemption/1-node/aws-04-19-2023"]
    adv = SpotAdvisor.load(shared_advisor())
    flat = advisor_prices(s, 4.032, adv, noise=0.0)
    for pool, series in flat.items():
        savings = adv.savings_percent("us-east-1", pool.instance_type)
        assert savings is not None
        assert np.allclose(series.prices, round(4.032 * (1 - savings / 100), 4))
    a = advisor_prices(s, 4.032, adv, seed=1, noise=0.05)
    b = advisor_prices(s, 4.032, adv, seed=1, noise=0.05)
    c = advisor_prices(s, 4.032, adv, seed=2, noise=0.05)
    assert all(np.array_equal(a[p].prices, b[p].prices) for p in a)
    assert any(not np.array_equal(a[p].prices, c[p].prices) for p in a)
    zones = list(a)
    assert not np.array_equal(a[zones[0]].prices, a[zones[1]].prices)  # zones of one region differ
    assert on_demand_prices()["p3.2xlarge"] == pytest.approx(3.06)


def test_a_price_series_file_overrides_advisor_prices(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(
        "pool,timestamp,price\n"
        "m5.large.us-east-1a,2024-01-01T00:00:00Z,0.031\n"
        "m5.large.us-east-1a,2024-01-01T01:00:00Z,0.035\n"
    )
    series = load_price_series(path)
    (pool,) = series
    assert series[pool].prices.tolist() == [0.031, 0.035]
    other = Pool("m5.large", "us-east-1b")
    merged = merge_prices({pool: series[pool], other: series[pool]}, {other: series[pool]})
    assert set(merged) == {pool, other}
    (tmp_path / "bad.csv").write_text("pool,when\nx,y\n")
    with pytest.raises(ValueError, match="missing column"):
        load_price_series(tmp_path / "bad.csv")
    json.dumps([p.name for p in series])
