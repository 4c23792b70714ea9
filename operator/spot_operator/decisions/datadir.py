"""Where the shared spot-market data lives: ``$SPOT_OPTIMIZER_DATA``, else ``<repository>/../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

ENV = "SPOT_OPTIMIZER_DATA"


class DataMissing(FileNotFoundError):
    """A data file the caller asked for is not there; the message says where it was looked for."""


def repository_root() -> Path:
    # operator/spot_operator/decisions/datadir.py -> the repository is three levels above the package.
    return Path(__file__).resolve().parents[3]


def data_dir() -> Path:
    """The data directory (it may not exist: callers check and say so)."""
    configured = os.environ.get(ENV)
    if configured:
        return Path(configured).expanduser()
    return repository_root().parent / "shared" / "data"


def advisor_path() -> Path:
    return data_dir() / "spot-advisor" / "spot-advisor-data.json"


def traces_dir() -> Path:
    return data_dir() / "spot-traces"


def prices_path() -> Path:
    return data_dir() / "spot-prices" / "2022-05-31-describe-spot-price-history.tsv.gz"


def require(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataMissing(
            f"{what} not found at {path}: set {ENV} to the data directory (it holds spot-advisor/, "
            f"spot-traces/, spot-prices/) or place it at {repository_root().parent}/shared/data"
        )
    return path
