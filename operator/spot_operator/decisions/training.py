"""Train and evaluate the interruption model from availability history (trace files or recorded events).

A sample is one pool at one time when it is available: the features at that time and whether it is
reclaimed within the horizon. Samples start after a warm-up (the features look back a day) and stop a
horizon before the end of observation (the label would be unknown).

The split is by time: within each group of traces observed together (one data set), the last
``valid_fraction`` of its time range is held out, so every validation sample is later than every
training sample of the same period. The report compares the model with the rules and with always
predicting the training base rate, on the same held-out samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from spot_operator.decisions import evaluation
from spot_operator.decisions.advisor import SpotAdvisor
from spot_operator.decisions.features import (
    FEATURES,
    HOUR,
    FloatArray,
    PoolHistory,
    PriceHistory,
    from_epoch,
    pool_features,
    siblings_of,
)
from spot_operator.decisions.rules import DEFAULT_RULES, RuleParameters, rule_risk
from spot_operator.planning.model import Pool
from spot_operator.simulation.traces import Scenario

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Samples:
    values: FloatArray
    labels: FloatArray
    times: FloatArray
    groups: IntArray
    group_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.labels.size)

    def take(self, mask: npt.NDArray[np.bool_]) -> Samples:
        return Samples(
            self.values[mask], self.labels[mask], self.times[mask], self.groups[mask], self.group_names
        )

    @property
    def time_range(self) -> tuple[datetime, datetime] | None:
        if not len(self):
            return None
        return from_epoch(float(self.times.min())), from_epoch(float(self.times.max()))


def _empty() -> Samples:
    return Samples(np.empty((0, len(FEATURES))), np.empty(0), np.empty(0), np.empty(0, dtype=np.int64))


def samples_from_histories(
    histories: Mapping[Pool, PoolHistory],
    horizon_hours: float = 1.0,
    step_seconds: float = 600.0,
    warmup_hours: float = 24.0,
    group: int = 0,
    group_name: str = "",
) -> Samples:
    parts = []
    for pool, history in sorted(histories.items()):
        av = history.availability
        if av is None:
            continue
        ts = np.arange(av.start + warmup_hours * HOUR, av.end - horizon_hours * HOUR, step_seconds)
        ts = ts[av.state_at(ts) == 1.0]
        if ts.size == 0:
            continue
        y = av.interruption_within(ts, horizon_hours * HOUR)
        x = pool_features(history, ts, siblings_of(pool, histories))
        keep = ~np.isnan(y)
        parts.append((x[keep], y[keep], ts[keep]))
    if not parts:
        return Samples(_empty().values, np.empty(0), np.empty(0), np.empty(0, dtype=np.int64), (group_name,))
    values = np.vstack([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    times = np.concatenate([p[2] for p in parts])
    groups = np.full(labels.size, group, dtype=np.int64)
    return Samples(values, labels, times, groups, (group_name,))


def concat(parts: Sequence[Samples]) -> Samples:
    """Join samples; group ids are renumbered by group name so equal names share a group."""
    names: list[str] = []
    chunks = []
    for part in parts:
        if not len(part):
            continue
        remap = np.empty(max(len(part.group_names), int(part.groups.max()) + 1), dtype=np.int64)
        for old, name in enumerate(part.group_names or ("",)):
            if name not in names:
                names.append(name)
            remap[old] = names.index(name)
        chunks.append(Samples(part.values, part.labels, part.times, remap[part.groups], ()))
    if not chunks:
        return _empty()
    return Samples(
        np.vstack([c.values for c in chunks]),
        np.concatenate([c.labels for c in chunks]),
        np.concatenate([c.times for c in chunks]),
        np.concatenate([c.groups for c in chunks]),
        tuple(names),
    )


def time_split(samples: Samples, valid_fraction: float = 0.25) -> tuple[Samples, Samples]:
    """Hold out the last ``valid_fraction`` of each group's time range."""
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError("valid_fraction must be between 0 and 1")
    valid = np.zeros(len(samples), dtype=bool)
    for g in np.unique(samples.groups):
        mine = samples.groups == g
        lo, hi = samples.times[mine].min(), samples.times[mine].max()
        cut = lo + (hi - lo) * (1.0 - valid_fraction)
        valid |= mine & (samples.times > cut)
    return samples.take(~valid), samples.take(valid)


def histories_from_scenario(
    scenario: Scenario,
    advisor: SpotAdvisor | None = None,
    min_available: int = 1,
    prices: Mapping[Pool, PriceHistory] | None = None,
    on_demand_price: float | None = None,
) -> dict[Pool, PoolHistory]:
    out = {}
    for pool in scenario.pools:
        band = advisor.band(scenario.original_region(pool), pool.instance_type) if advisor else None
        out[pool] = PoolHistory(
            pool,
            scenario.availability(pool, min_available),
            (prices or {}).get(pool),
            on_demand_price,
            band,
        )
    return out


def samples_from_scenarios(
    scenarios: Iterable[Scenario],
    advisor: SpotAdvisor | None = None,
    horizon_hours: float = 1.0,
    step_seconds: float = 600.0,
    min_available: int = 1,
) -> Samples:
    """Samples from trace scenarios, one group per data set (its types share the same period)."""
    parts = [
        samples_from_histories(
            histories_from_scenario(s, advisor, min_available),
            horizon_hours,
            step_seconds,
            group_name=s.dataset,
        )
        for s in scenarios
    ]
    return concat(parts)


@dataclass(frozen=True)
class TrainParams:
    rounds: int = 150
    max_depth: int = 4
    eta: float = 0.08
    subsample: float = 0.8
    colsample_bytree: float = 0.9
    min_child_weight: float = 5.0
    reg_lambda: float = 1.0
    seed: int = 0
    nthread: int = 1  # more threads lose to contention on small data and small machines

    def booster_params(self) -> dict[str, object]:
        return {
            "objective": "binary:logistic",
            "eval_metric": "logloss",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.eta,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "seed": self.seed,
            "nthread": self.nthread,
        }


def fit(train: Samples, params: TrainParams = TrainParams()) -> xgb.Booster:
    if not len(train):
        raise ValueError("no training samples")
    matrix = xgb.DMatrix(train.values.astype(np.float32), label=train.labels, feature_names=list(FEATURES))
    return xgb.train(params.booster_params(), matrix, num_boost_round=params.rounds, verbose_eval=False)


def predict(booster: xgb.Booster, values: FloatArray) -> FloatArray:
    if values.shape[0] == 0:
        return np.empty(0)
    out = booster.inplace_predict(np.ascontiguousarray(values, dtype=np.float32), validate_features=False)
    return np.asarray(out, dtype=np.float64).reshape(-1)


@dataclass(frozen=True)
class TrainingReport:
    payload: bytes
    horizon_hours: float
    params: TrainParams
    rows_train: int
    rows_valid: int
    data_from: datetime | None
    data_to: datetime | None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    reliability: dict[str, list[evaluation.ReliabilityBin]] = field(default_factory=dict)

    def flat_metrics(self) -> dict[str, float]:
        """``valid_<scorer>_<metric>``, as stored in the registry."""
        return {f"valid_{who}_{k}": v for who, ms in self.metrics.items() for k, v in ms.items()}

    def params_dict(self) -> dict[str, object]:
        return asdict(self.params)


def train_and_evaluate(
    samples: Samples,
    params: TrainParams = TrainParams(),
    valid_fraction: float = 0.25,
    horizon_hours: float = 1.0,
    rules: RuleParameters = DEFAULT_RULES,
    bins: int = 10,
) -> TrainingReport:
    train, valid = time_split(samples, valid_fraction)
    booster = fit(train, params)
    base = float(train.labels.mean())
    predictions = {
        "xgboost": predict(booster, valid.values),
        "rules": rule_risk(valid.values, None, rules, horizon_hours),
        "base_rate": np.full(len(valid), base),
    }
    metrics = {who: evaluation.summary(valid.labels, p) for who, p in predictions.items()}
    reliability = {
        who: evaluation.reliability(valid.labels, predictions[who], bins) for who in ("xgboost", "rules")
    }
    span = train.time_range
    return TrainingReport(
        payload=bytes(booster.save_raw(raw_format="ubj")),
        horizon_hours=horizon_hours,
        params=params,
        rows_train=len(train),
        rows_valid=len(valid),
        data_from=span[0] if span else None,
        data_to=span[1] if span else None,
        metrics=metrics,
        reliability=reliability,
    )


def format_report(report: TrainingReport) -> str:
    lines = [
        f"trained on {report.rows_train} samples ({report.data_from} .. {report.data_to}), "
        f"validated on {report.rows_valid} later samples; horizon {report.horizon_hours:g} h",
        f"{'scorer':<10} {'log-loss':>9} {'AUC':>7} {'Brier':>7} {'ECE':>7} {'base rate':>9}",
    ]
    for who, m in report.metrics.items():
        lines.append(
            f"{who:<10} {m['log_loss']:>9.4f} {m['auc']:>7.3f} {m['brier']:>7.4f} {m['ece']:>7.4f} "
            f"{m['positive_rate']:>9.3f}"
        )
    for who, table in report.reliability.items():
        lines.append(f"reliability ({who}): predicted range -> mean predicted / observed rate (count)")
        for b in table:
            if b.count:
                lines.append(
                    f"  {b.lower:4.1f}-{b.upper:4.1f}  {b.mean_predicted:6.3f} / {b.observed_rate:6.3f}"
                    f"  ({b.count})"
                )
    return "\n".join(lines)


__all__ = [
    "Samples",
    "TrainParams",
    "TrainingReport",
    "concat",
    "fit",
    "format_report",
    "histories_from_scenario",
    "predict",
    "samples_from_histories",
    "samples_from_scenarios",
    "time_split",
    "train_and_evaluate",
]
