"""A small xgboost model, trained here on a slice of the real traces (skipped without the shared data)."""

from __future__ import annotations

import pytest

from spot_operator.decisions.advisor import SpotAdvisor
from spot_operator.decisions.training import (
    Samples,
    TrainingReport,
    TrainParams,
    samples_from_scenarios,
    train_and_evaluate,
)
from spot_operator.simulation.traces import Scenario, load_traces, scenarios

from .data import shared_advisor, shared_traces

SLICE_DAYS = 3.0


@pytest.fixture(scope="session")
def trace_slice() -> list[Scenario]:
    """Three days of two data sets (one CPU, one GPU), so the split has two groups."""
    found = scenarios(load_traces(shared_traces()))
    wanted = ("preemption/1-node/aws-04-19-2023", "preemption/1-node/aws-04-22-2023")
    return [s.truncated(SLICE_DAYS) for s in found if s.dataset in wanted]


@pytest.fixture(scope="session")
def slice_samples(trace_slice: list[Scenario]) -> Samples:
    return samples_from_scenarios(trace_slice, SpotAdvisor.load(shared_advisor()), step_seconds=900.0)


@pytest.fixture(scope="session")
def small_model(slice_samples: Samples) -> TrainingReport:
    return train_and_evaluate(slice_samples, TrainParams(rounds=40, max_depth=3, seed=7))
