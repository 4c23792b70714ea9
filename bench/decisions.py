"""Decision-path figures: scorer latency for 60 pools, and simulator wall time for 45 days x 9 zones.

1. Scorer latency: one ``score(60 pools, now)`` call, end to end (features from history + model), for
   the rules, the xgboost model, and the ScorerChain with that model active (registry on disk, pointer
   polled). Printed as p50/p95/p99 over ``--calls`` calls at moving times. Target: p99 <= 5 ms with
   xgboost. The 60 pools are 20 instance types x 3 zones over real trace histories.
2. Simulator: every policy replayed over 45 days x 9 zones. The shared traces hold at most 27 days and
   4 zones per data set, so real p3.2xlarge traces are resampled and repeated (``traces.tiled``) to
   that size; the xgboost policy uses one model trained on all real traces (this measures speed, not
   quality). Target: <= 30 s. Wall and CPU seconds are printed per policy: on a shared machine the
   CPU figure is the steadier one.

    PYTHONPATH=operator:agent:. python bench/decisions.py [--calls 1000] [--days 45] [--zones 9] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from spot_operator.decisions.advisor import maybe_load_advisor
from spot_operator.decisions.features import PoolHistory
from spot_operator.decisions.history import StaticHistory
from spot_operator.decisions.registry import FilesystemModelStore, ModelRegistry
from spot_operator.decisions.rules import RuleScorer
from spot_operator.decisions.scorer import ScorerChain, xgboost_loader
from spot_operator.decisions.training import TrainParams, fit, samples_from_scenarios
from spot_operator.decisions.xgb import XGBoostScorer
from spot_operator.planning.model import Pool
from spot_operator.ports import Scorer
from spot_operator.simulation.prices import advisor_prices, on_demand_prices
from spot_operator.simulation.runner import quiet_operator
from spot_operator.simulation.simulator import (
    POLICIES,
    ScorerKind,
    SimulationParams,
    decision_times,
    histories,
    risk_table,
    simulate,
)
from spot_operator.simulation.traces import Scenario, load_traces, scenarios, tiled


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]

    return {
        "p50_ms": q(0.50) * 1e3,
        "p95_ms": q(0.95) * 1e3,
        "p99_ms": q(0.99) * 1e3,
        "mean_ms": statistics.fmean(ordered) * 1e3,
    }


def sixty_pools(found: list[Scenario]) -> dict[Pool, PoolHistory]:
    sources = [(s, p) for s in found for p in s.pools]
    out = {}
    for i in range(60):
        scenario, pool = sources[i % len(sources)]
        bench_pool = Pool(f"c{i // 3}.xlarge", f"us-east-1{'abc'[i % 3]}")
        out[bench_pool] = PoolHistory(bench_pool, scenario.availability(pool), None, 1.0, (i % 5))
    return out


def time_scorer(scorer: Scorer, pools: list[Pool], start: Any, calls: int) -> dict[str, float]:
    """Wall time per call, and the calling thread's CPU time (what the call costs when not preempted)."""
    wall, cpu = [], []
    for k in range(calls):
        now = start + timedelta(seconds=300 * k)
        t0, c0 = time.perf_counter(), time.thread_time()
        scores = scorer.score(pools, now)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
        assert len(scores) == len(pools)
    out = percentiles(wall)
    out.update({f"cpu_{k}": v for k, v in percentiles(cpu).items()})
    return out


def bench_scorers(found: list[Scenario], model: bytes, calls: int) -> dict[str, dict[str, float]]:
    pool_histories = sixty_pools(found)
    history = StaticHistory(pool_histories)
    pools = list(pool_histories)
    start = found[0].start + timedelta(days=2)
    results = {}
    results["rules"] = time_scorer(RuleScorer(history), pools, start, calls)
    results["xgboost"] = time_scorer(XGBoostScorer.from_bytes(model, "bench", history), pools, start, calls)
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(FilesystemModelStore(Path(tmp)))
        registry.activate(registry.upload(model).version)
        # A generous budget here: the point is the chain's own overhead. On a busy machine single calls
        # can stall for a scheduling slice and the default 50 ms budget would (rightly) demote the model.
        chain = ScorerChain(
            RuleScorer(history),
            registry,
            xgboost_loader(history),
            poll_seconds=30.0,
            latency_budget_seconds=1.0,
        )
        chain.score(pools, start)  # load once, as a running operator has
        results["chain(xgboost)"] = time_scorer(chain, pools, start, calls)
        results["chain(xgboost)"]["answered_by_model"] = float(chain.name == "xgboost")
    return results


def bench_simulator(found: list[Scenario], model: bytes, days: float, zones: int) -> dict[str, Any]:
    gpu = [s for s in found if s.instance_type == "p3.2xlarge"]
    scenario = tiled(gpu, days, zones)
    params = SimulationParams()
    advisor = maybe_load_advisor()
    od = on_demand_prices()[scenario.instance_type]
    prepared = time.perf_counter()
    prices = advisor_prices(scenario, od, advisor, params.seed, params.price_noise, params.price_step_hours)
    pool_histories = histories(scenario, prices, od, advisor)
    times = decision_times(scenario, params.decision_interval_seconds)
    scorer = XGBoostScorer.from_bytes(model, "bench", StaticHistory(pool_histories))
    tables = {kind: risk_table(pool_histories, times, kind, scorer) for kind in ScorerKind}
    prep = time.perf_counter() - prepared
    rows: list[dict[str, Any]] = []
    walls: list[float] = []
    cpus: list[float] = []
    with quiet_operator():
        for config in POLICIES:
            wall, cpu = time.perf_counter(), time.process_time()
            result = simulate(scenario, config, params, prices, od, tables[config.scorer])
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            rows.append(
                {
                    "policy": config.name,
                    "wall_s": round(walls[-1], 2),
                    "cpu_s": round(cpus[-1], 2),
                    "savings_percent": round(result.savings_percent, 1),
                    "switches": result.switches,
                    "interruptions": result.interruptions,
                }
            )
    return {
        "scenario": scenario.name,
        "note": scenario.note,
        "zones": len(scenario.pools),
        "days": round(scenario.duration_seconds / 86400, 2),
        "decision_points": int(times.size),
        "prepare_s": round(prep, 2),
        "policies": rows,
        "total_wall_s": round(prep + sum(walls), 2),
        "total_cpu_s": round(sum(cpus), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--days", type=float, default=45.0)
    parser.add_argument("--zones", type=int, default=9)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    found = scenarios(load_traces())
    trained = time.perf_counter()
    model = bytes(fit(samples_from_scenarios(found, maybe_load_advisor()), TrainParams()).save_raw())
    train_s = time.perf_counter() - trained
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print(f"model trained on all real traces in {train_s:.1f} s (150 rounds, nthread 1)")

    scorers = bench_scorers(found, model, args.calls)
    print(f"\nscorer latency, 60 pools per call, {args.calls} calls (target p99 <= 5 ms with xgboost)")
    print(
        f"  {'scorer':<16} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
        f"{'CPU p50':>8} {'CPU p99':>8}"
    )
    for name, r in scorers.items():
        print(
            f"  {name:<16} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['mean_ms']:>8.2f} "
            f"{r['cpu_p50_ms']:>8.2f} {r['cpu_p99_ms']:>8.2f}"
        )

    sim = bench_simulator(found, model, args.days, args.zones)
    print(
        f"\nsimulator: {sim['days']} days x {sim['zones']} zones, {sim['decision_points']} decision points "
        f"(target <= 30 s)\n  {sim['note']}"
    )
    print(f"  prices, features and risk tables for all decision times: {sim['prepare_s']:.2f} s")
    print(f"  {'policy':<14} {'wall s':>8} {'cpu s':>8} {'saved %':>8} {'switches':>9} {'interr.':>8}")
    for r in sim["policies"]:
        print(
            f"  {r['policy']:<14} {r['wall_s']:>8.2f} {r['cpu_s']:>8.2f} {r['savings_percent']:>8.1f} "
            f"{r['switches']:>9} {r['interruptions']:>8}"
        )
    print(f"  all six policies: {sim['total_wall_s']:.1f} s wall, {sim['total_cpu_s']:.1f} s CPU")
    if args.json:
        print(
            json.dumps({"scorers": scorers, "simulator": sim, "load_average": load}, indent=1, default=float)
        )


if __name__ == "__main__":
    main()
