"""How good a probability is, in plain numpy: log-loss, AUC, Brier score and reliability bins."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

EPSILON = 1e-7


def _clean(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    yy = np.asarray(y, dtype=np.float64).ravel()
    pp = np.asarray(p, dtype=np.float64).ravel()
    if yy.shape != pp.shape:
        raise ValueError(f"{yy.size} labels but {pp.size} predictions")
    keep = ~(np.isnan(yy) | np.isnan(pp))
    return yy[keep], pp[keep]


def log_loss(y: npt.ArrayLike, p: npt.ArrayLike, eps: float = EPSILON) -> float:
    """Mean negative log-likelihood of binary labels under predicted probabilities (NaN pairs dropped)."""
    yy, pp = _clean(y, p)
    if yy.size == 0:
        return float("nan")
    pp = np.clip(pp, eps, 1 - eps)
    return float(-np.mean(yy * np.log(pp) + (1 - yy) * np.log1p(-pp)))


def brier(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    yy, pp = _clean(y, p)
    return float(np.mean((pp - yy) ** 2)) if yy.size else float("nan")


def _average_ranks(values: FloatArray) -> FloatArray:
    """1-based ranks, ties sharing the mean of their positions."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(values.size, dtype=np.float64)
    # Boundaries of runs of equal values.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values)) + 1]
    ends = np.r_[starts[1:], values.size]
    mean_rank = (starts + ends + 1) / 2.0  # positions start..end-1 are ranks start+1..end
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def auc(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Area under the ROC curve by the Mann-Whitney statistic (ties count half); NaN with one class."""
    yy, pp = _clean(y, p)
    positives = yy > 0.5
    n_pos = int(positives.sum())
    n_neg = yy.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(pp)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_rate: float


def reliability(y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width bins of predicted probability: how often the event happened in each."""
    yy, pp = _clean(y, p)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, pp, side="right") - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        out.append(
            ReliabilityBin(
                float(edges[b]),
                float(edges[b + 1]),
                n,
                float(pp[mask].mean()) if n else float("nan"),
                float(yy[mask].mean()) if n else float("nan"),
            )
        )
    return out


def expected_calibration_error(y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10) -> float:
    """Count-weighted mean gap between predicted and observed rates over the reliability bins."""
    table = reliability(y, p, bins)
    total = sum(b.count for b in table)
    if total == 0:
        return float("nan")
    return float(sum(b.count * abs(b.mean_predicted - b.observed_rate) for b in table if b.count) / total)


def summary(y: npt.ArrayLike, p: npt.ArrayLike) -> dict[str, float]:
    yy, pp = _clean(y, p)
    return {
        "rows": float(yy.size),
        "positive_rate": float(yy.mean()) if yy.size else float("nan"),
        "log_loss": log_loss(yy, pp),
        "auc": auc(yy, pp),
        "brier": brier(yy, pp),
        "ece": expected_calibration_error(yy, pp),
    }


__all__ = [
    "ReliabilityBin",
    "auc",
    "brier",
    "expected_calibration_error",
    "log_loss",
    "reliability",
    "summary",
]
