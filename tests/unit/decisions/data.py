"""The shared spot-market data: where it is, and a clear skip when it is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from spot_operator.decisions.datadir import ENV, advisor_path, data_dir, traces_dir


def require_data(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (set {ENV} or place it at <repo>/../shared/data)")
    return path


def shared_traces() -> Path:
    return require_data(traces_dir())


def shared_advisor() -> Path:
    return require_data(advisor_path())


def shared_data() -> Path:
    return require_data(data_dir())
