"""The simulator on a hand-made trace, on the real traces, and its determinism."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from spot_operator.decisions.features import PriceHistory, to_epoch
from spot_operator.planning.model import Pool
from spot_operator.simulation.runner import run_comparison
from spot_operator.simulation.simulator import (
    POLICIES,
    PolicyConfig,
    PolicyResult,
    ScorerKind,
    SimulationParams,
    decision_times,
    histories,
    risk_table,
    simulate,
)
from spot_operator.simulation.traces import Scenario, load_traces, scenarios

from ..decisions.data import shared_traces

TYPE = "p3.2xlarge"
ON_DEMAND = 4.0
PRICES = {"us-east-1a": 1.0, "us-east-1b": 1.2, "us-east-1c": 0.8}


def write_trace(root: Path, dataset: str, zone: str, tag: str, data: list[int], gap: int = 600) -> None:
    folder = root / dataset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{zone}_{tag}.json").write_text(json.dumps({"metadata": {"gap_seconds": gap}, "data": data}))


@pytest.fixture
def handmade(tmp_path: Path) -> Scenario:
    """Two hours in ten-minute ticks: a up for the first hour only, b always up, c never."""
    write_trace(tmp_path, "availability/1-node/aws-01-01-2024", "us-east-1a", "v100_1", [1] * 6 + [0] * 6)
    write_trace(tmp_path, "availability/1-node/aws-01-01-2024", "us-east-1b", "v100_1", [1] * 12)
    write_trace(tmp_path, "availability/1-node/aws-01-01-2024", "us-east-1c", "v100_1", [0] * 12)
    (scenario,) = scenarios(load_traces(tmp_path))
    return scenario


def flat_prices(scenario: Scenario) -> dict[Pool, PriceHistory]:
    start = to_epoch(scenario.start)
    return {p: PriceHistory(np.array([start]), np.array([PRICES[p.zone]])) for p in scenario.pools}


def run(scenario: Scenario, name: str, params: SimulationParams = SimulationParams()) -> PolicyResult:
    config = next(p for p in POLICIES if p.name == name)
    prices = flat_prices(scenario)
    risks = None
    if config.scorer is not ScorerKind.NONE:
        pool_histories = histories(scenario, prices, ON_DEMAND, None)
        risks = risk_table(
            pool_histories, decision_times(scenario, params.decision_interval_seconds), config.scorer
        )
    return simulate(scenario, config, params, prices, ON_DEMAND, risks)


def test_the_handmade_trace_parses_into_one_scenario(handmade: Scenario) -> None:
    assert handmade.instance_type == TYPE and handmade.region == "us-east-1"
    assert handmade.zones == ("us-east-1a", "us-east-1b", "us-east-1c")
    assert handmade.duration_seconds == 7200
    assert handmade.availability(Pool(TYPE, "us-east-1a")).interruptions.tolist() == [
        to_epoch(handmade.start) + 3600
    ]


def test_always_on_demand_saves_nothing_and_never_goes_down(handmade: Scenario) -> None:
    """One on-demand instance for two hours at 4.00/h: 8.00, exactly the on-demand reference."""
    r = run(handmade, "on-demand")
    assert r.cost_usd == pytest.approx(8.0)
    assert r.on_demand_cost_usd == pytest.approx(8.0)
    assert r.savings_percent == pytest.approx(0.0)
    assert r.availability_percent == 100.0
    assert (r.interruptions, r.switches, r.downtime_seconds) == (0, 0, 0.0)
    assert r.occupancy == [(0.0, 2.0, "us-east-1a on-demand")]


@pytest.mark.parametrize("name", ["stay", "cheapest", "ours-rules"])
def test_spot_policies_on_the_handmade_trace(handmade: Scenario, name: str) -> None:
    """Hand computation (prices a 1.00, b 1.20, c 0.80 per hour; on-demand 4.00; boot 90 s; notice 120 s).

    Before the start c (cheapest) refuses capacity, so the primary starts in a. Nothing beats a while it is
    up (b costs more, c has no capacity), so no policy moves. At 3600 s a is reclaimed: the notice opens a
    failover; c is tried first (cheapest, or for ours equally safe) and refuses, so the replacement
    launches in b at 3600, is ready at 3690, traffic moves (one cutover: 5 s of downtime), and the old
    primary drains until the notice deadline, 3720, when it is reclaimed.

    cost = a 1.00 x 3720 s + b 1.20 x 3600 s = 1.0333 + 1.2000 = 2.2333
    savings = 1 - 2.2333 / 8.00 = 72.083 %; downtime 5 s of 7200 s: availability 99.9306 %;
    one interruption, one (emergency) switch.
    """
    r = run(handmade, name)
    assert r.cost_usd == pytest.approx(1.0 * 3720 / 3600 + 1.2 * 3600 / 3600)
    assert r.savings_percent == pytest.approx(100 * (1 - 2.233333 / 8.0), abs=1e-3)
    assert r.downtime_seconds == pytest.approx(5.0)
    assert r.availability_percent == pytest.approx(100 * (1 - 5 / 7200))
    assert (r.interruptions, r.switches, r.emergency_switches, r.decision_switches) == (1, 1, 1, 0)
    assert [lab for _, _, lab in r.occupancy] == ["us-east-1a", "us-east-1b"]
    assert r.occupancy[0][1] == pytest.approx(3690 / 3600)


def test_hot_standby_on_the_handmade_trace(handmade: Scenario) -> None:
    """Hand computation: the standby starts in b (c refused, a holds the primary), ready before the start.

    At 3600 s the standby is promoted at once (one cutover: 5 s); the old primary drains for the 30 s
    terminate wait, to 3630 s. No new standby can launch: a and c have no capacity.

    cost = a 1.00 x 3630 s + b 1.20 x 7200 s = 1.00833 + 2.40 = 3.40833; savings 57.396 %; downtime 5 s.
    """
    r = run(handmade, "hot-standby")
    assert r.cost_usd == pytest.approx(1.0 * 3630 / 3600 + 1.2 * 2)
    assert r.downtime_seconds == pytest.approx(5.0)
    assert (r.interruptions, r.switches, r.replica_interruptions) == (1, 1, 0)
    assert [lab for _, _, lab in r.occupancy] == ["us-east-1a", "us-east-1b"]


def test_spot_only_policies_are_down_while_no_zone_has_capacity(tmp_path: Path) -> None:
    """Both zones go for 30 minutes at once: the spot-only baseline waits; ours buys on-demand meanwhile."""
    for zone in ("us-east-1a", "us-east-1b"):
        write_trace(
            tmp_path, "availability/1-node/aws-01-01-2024", zone, "v100_1", [1] * 6 + [0] * 3 + [1] * 9
        )
    (scenario,) = scenarios(load_traces(tmp_path))
    stay = run(scenario, "stay")
    ours = run(scenario, "ours-rules")
    # The notice gives 120 s; after that nothing serves until a zone is back and a replacement booted.
    assert stay.downtime_seconds > 1800 - 120
    assert ours.downtime_seconds < 60
    assert any(lab.endswith("on-demand") for _, _, lab in ours.occupancy)
    assert ours.cost_usd > stay.cost_usd


def small_params(seed: int) -> SimulationParams:
    return SimulationParams(seed=seed, price_noise=0.08)


def test_the_simulator_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    for dataset in ("availability/1-node/aws-01-01-2024", "availability/1-node/aws-02-01-2024"):
        for zone in ("us-east-1a", "us-east-1b", "us-east-1c"):
            data = (rng.random(432) > 0.15).astype(int).tolist()  # three days: a day of warm-up for features
            write_trace(tmp_path, dataset, zone, "v100_1", data)
    found = scenarios(load_traces(tmp_path))
    target = [found[0].truncated(0.5)]

    def once(seed: int) -> list[dict[str, object]]:
        results = run_comparison(target, small_params(seed), None, training_pool=found)
        return [
            {**r.summary(), "series": r.cost_series, "occupancy": r.occupancy} for r in results[0].results
        ]

    first, second = once(3), once(3)
    assert first == second
    other = once(4)
    assert [r["cost_usd"] for r in other] != [r["cost_usd"] for r in first]  # the seed moves the prices
    by_policy = {r["policy"]: r for r in first}
    assert set(by_policy) == {p.name for p in POLICIES}
    assert by_policy["on-demand"]["savings_percent"] == 0.0
    assert by_policy["on-demand"]["availability_percent"] == 100.0


@pytest.mark.slow
def test_on_the_real_traces_on_demand_is_the_reference_and_spot_saves() -> None:
    """Two days of one real data set, every policy: the invariants every comparison must keep."""
    real = scenarios(load_traces(shared_traces()))
    target = [s.truncated(2) for s in real if s.dataset == "preemption/1-node/aws-04-19-2023"]
    (result,) = run_comparison(target, SimulationParams(), None, training_pool=real)
    by = result.by_policy()
    assert by["on-demand"].savings_percent == pytest.approx(0.0, abs=1e-9)
    assert by["on-demand"].availability_percent == 100.0
    for name in ("stay", "cheapest", "ours-rules", "ours-xgboost"):
        assert by[name].savings_percent > 30.0, name
    assert by["hot-standby"].cost_usd > by["stay"].cost_usd  # two spot instances cost more than one
    assert result.model["held_out_metrics"]["xgboost"]["rows"] > 0
    assert "preemption/1-node/aws-04-19-2023" not in result.model["trained_on"]


def test_policies_run_through_the_same_world_settings() -> None:
    names = [p.name for p in POLICIES]
    assert names == ["on-demand", "stay", "cheapest", "ours-rules", "ours-xgboost", "hot-standby"]
    ours = next(p for p in POLICIES if p.name == "ours-rules")
    assert isinstance(ours, PolicyConfig) and ours.decisions is not None and not ours.spot_only
    assert replace(SimulationParams(), boot_seconds=120).boot_seconds == 120
