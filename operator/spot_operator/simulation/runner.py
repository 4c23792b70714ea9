"""Run the policy comparison over scenarios: prices, scores, held-out models, then every replay.

The xgboost policy never replays data its model was trained on: for each data set the model is trained
on the traces of every *other* data set (leave one data set out), unless a model is given. Its
held-out log-loss and AUC on the replayed data set are reported next to the rules'.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spot_operator.decisions import evaluation
from spot_operator.decisions.advisor import SpotAdvisor
from spot_operator.decisions.features import PriceHistory
from spot_operator.decisions.history import StaticHistory
from spot_operator.decisions.rules import rule_risk
from spot_operator.decisions.training import (
    TrainParams,
    fit,
    samples_from_scenarios,
)
from spot_operator.decisions.xgb import XGBoostScorer
from spot_operator.planning.model import Pool
from spot_operator.simulation.prices import advisor_prices, merge_prices, on_demand_prices
from spot_operator.simulation.simulator import (
    POLICIES,
    PolicyConfig,
    ScenarioResult,
    ScorerKind,
    SimulationParams,
    decision_times,
    histories,
    risk_table,
    simulate,
)
from spot_operator.simulation.traces import Scenario

Progress = Callable[[str, float], None]  # (task label, fraction done of that task)


@dataclass(frozen=True)
class HeldOutModel:
    payload: bytes
    version: str
    trained_on: tuple[str, ...]
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "trained_on": list(self.trained_on),
            "held_out_metrics": self.metrics,
        }


@contextmanager
def quiet_operator() -> Iterator[None]:
    """The replays drive the real reconciler, which logs every refused launch; keep the console readable."""
    names = ("spot_operator.runtime", "spot_operator.actuators", "spot_operator.decisions.scorer")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def held_out_models(
    targets: Sequence[Scenario],
    training_pool: Sequence[Scenario],
    advisor: SpotAdvisor | None,
    params: TrainParams = TrainParams(),
    min_available: int = 1,
) -> dict[str, HeldOutModel]:
    """One model per data set in ``targets``, trained on every other data set of ``training_pool``."""
    out: dict[str, HeldOutModel] = {}
    for dataset in sorted({s.dataset for s in targets}):
        others = [s for s in training_pool if s.dataset != dataset]
        if not others:
            continue
        samples = samples_from_scenarios(others, advisor, min_available=min_available)
        booster = fit(samples, params)
        mine = samples_from_scenarios(
            [s for s in training_pool if s.dataset == dataset]
            or [s for s in targets if s.dataset == dataset],
            advisor,
            min_available=min_available,
        )
        raw = booster.inplace_predict(
            np.ascontiguousarray(mine.values, dtype=np.float32), validate_features=False
        )
        predicted = np.asarray(raw, dtype=np.float64).reshape(-1)
        metrics = {
            "xgboost": evaluation.summary(mine.labels, predicted),
            "rules": evaluation.summary(mine.labels, rule_risk(mine.values)),
        }
        out[dataset] = HeldOutModel(
            bytes(booster.save_raw(raw_format="ubj")),
            f"held-out:{dataset}",
            tuple(sorted({s.dataset for s in others})),
            metrics,
        )
    return out


def run_comparison(
    scenarios: Sequence[Scenario],
    params: SimulationParams,
    advisor: SpotAdvisor | None,
    *,
    policies: Sequence[PolicyConfig] = POLICIES,
    training_pool: Sequence[Scenario] | None = None,
    model: XGBoostScorer | None = None,
    price_series: Mapping[Pool, PriceHistory] | None = None,
    on_demand: Mapping[str, float] | None = None,
    train_params: TrainParams | None = None,
    progress: Progress | None = None,
) -> list[ScenarioResult]:
    """Every policy on every scenario, in a stable order; deterministic for ``params.seed``."""
    table = dict(on_demand or on_demand_prices())
    wants_model = any(p.scorer is ScorerKind.XGBOOST for p in policies)
    models: dict[str, HeldOutModel] = {}
    if wants_model and model is None:
        if progress is not None:
            progress("training held-out models", 0.0)
        models = held_out_models(
            scenarios,
            training_pool or scenarios,
            advisor,
            train_params or TrainParams(seed=params.seed),
            params.min_available,
        )
        if progress is not None:
            progress("training held-out models", 1.0)
    results: list[ScenarioResult] = []
    with quiet_operator():
        for scenario in scenarios:
            if scenario.instance_type not in table:
                raise ValueError(f"no on-demand price for {scenario.instance_type}; pass one")
            od = table[scenario.instance_type]
            prices = advisor_prices(
                scenario, od, advisor, params.seed, params.price_noise, params.price_step_hours
            )
            if price_series:
                prices = merge_prices(prices, price_series)
            pool_histories = histories(scenario, prices, od, advisor, params.min_available)
            times = decision_times(scenario, params.decision_interval_seconds)
            tables = {}
            model_info: dict[str, Any] = {}
            for kind in {p.scorer for p in policies}:
                scorer = None
                if kind is ScorerKind.XGBOOST:
                    scorer = model
                    if scorer is None:
                        held = models.get(scenario.dataset)
                        if held is None:
                            raise ValueError(f"no model for {scenario.dataset}: give one (no other data set)")
                        scorer = XGBoostScorer.from_bytes(
                            held.payload, held.version, StaticHistory(pool_histories)
                        )
                        model_info = held.describe()
                    else:
                        model_info = {"version": scorer.version, "trained_on": ["given"]}
                tables[kind] = risk_table(pool_histories, times, kind, scorer)
            runs = []
            for config in policies:
                label = f"{scenario.name} {config.name}"

                def report(fraction: float, label: str = label) -> None:
                    if progress is not None:
                        progress(label, fraction)

                runs.append(simulate(scenario, config, params, prices, od, tables.get(config.scorer), report))
            results.append(ScenarioResult(scenario, runs, model_info))
    return results


__all__ = ["HeldOutModel", "held_out_models", "quiet_operator", "run_comparison"]
