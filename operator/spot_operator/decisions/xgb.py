"""XGBoostScorer: a gradient-boosted classifier of "reclaimed within the horizon", over :data:`FEATURES`.

The model is an ``xgboost.Booster`` loaded from its raw UBJSON bytes (what the registry stores). It
predicts with ``inplace_predict`` on a contiguous float array (no DMatrix per call) and a small,
fixed ``nthread``, so one call for 60 pools stays in the low milliseconds; the operator calls it from
one decision loop and never shares a booster between threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import xgboost as xgb

from spot_operator.decisions.features import (
    FEATURES,
    FeatureMatrix,
    FloatArray,
    features_at,
    latest_price,
    to_epoch,
)
from spot_operator.decisions.history import HistorySource
from spot_operator.planning.model import Pool
from spot_operator.ports import PoolScore, ScoringContext

MODEL_KIND = "xgboost"


class ModelLoadError(RuntimeError):
    """The bytes are not a usable model (corrupt, or trained on other features)."""


def load_booster(payload: bytes, nthread: int = 1) -> xgb.Booster:
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(payload))
    except xgb.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"not an xgboost model: {first}") from exc
    booster.set_param({"nthread": nthread})
    return booster


def convert_horizon(risk: FloatArray, from_hours: float, to_hours: float) -> FloatArray:
    """Re-express probabilities for another horizon under a constant hazard."""
    if from_hours == to_hours:
        return risk
    out: FloatArray = -np.expm1(np.log1p(-np.clip(risk, 0.0, 1.0 - 1e-12)) * (to_hours / from_hours))
    return out


class XGBoostScorer:
    """Implements :class:`spot_operator.ports.Scorer` with a trained booster."""

    name = MODEL_KIND

    def __init__(
        self,
        booster: xgb.Booster,
        version: str,
        history: HistorySource,
        horizon_hours: float = 1.0,
        nthread: int = 1,
    ) -> None:
        expected = booster.num_features()
        if expected != len(FEATURES):
            raise ModelLoadError(f"model expects {expected} features, this build computes {len(FEATURES)}")
        names = booster.feature_names
        if names is not None and tuple(names) != FEATURES:
            raise ModelLoadError(f"model was trained on features {list(names)}, not {list(FEATURES)}")
        booster.set_param({"nthread": nthread})
        self.booster = booster
        self.version = version
        self.history = history
        self.horizon_hours = horizon_hours

    @classmethod
    def from_bytes(
        cls,
        payload: bytes,
        version: str,
        history: HistorySource,
        horizon_hours: float = 1.0,
        nthread: int = 1,
    ) -> XGBoostScorer:
        return cls(load_booster(payload, nthread), version, history, horizon_hours, nthread)

    def predict(self, values: FloatArray) -> FloatArray:
        """Probability of a reclaim within the model's own horizon, one per row."""
        x = np.ascontiguousarray(values, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(FEATURES):
            raise ValueError(f"expected rows of {len(FEATURES)} features, got shape {x.shape}")
        if x.shape[0] == 0:
            return np.empty(0)
        out = self.booster.inplace_predict(x, validate_features=False)
        return np.asarray(out, dtype=np.float64).reshape(-1)

    def risks(self, matrix: FeatureMatrix, horizon_hours: float | None = None) -> FloatArray:
        risk = self.predict(matrix.values)
        return convert_horizon(risk, self.horizon_hours, horizon_hours or self.horizon_hours)

    def score(
        self, pools: Sequence[Pool], now: datetime, context: ScoringContext | None = None
    ) -> dict[Pool, PoolScore]:
        histories = self.history.histories(now)
        t = to_epoch(now)
        matrix = features_at(histories, pools, t)
        risk = self.risks(matrix, context.horizon_hours if context is not None else None)
        return {
            pool: PoolScore(pool, float(risk[i]), latest_price(histories.get(pool), t))
            for i, pool in enumerate(pools)
        }


__all__ = ["MODEL_KIND", "ModelLoadError", "XGBoostScorer", "convert_horizon", "load_booster"]
