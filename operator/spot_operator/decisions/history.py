"""Where scorers read pool history from: a small Protocol and an in-memory implementation.

The operator fills one from the price store and its interruption events; the simulator and the tests
fill one from trace files. Feature building is causal, so a source may hold data past ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol

from spot_operator.decisions.features import PoolHistory
from spot_operator.planning.model import Pool


class HistorySource(Protocol):
    def histories(self, now: datetime) -> Mapping[Pool, PoolHistory]:
        """Every pool the source knows, so that siblings (same type, other zones) can be found."""
        ...


class StaticHistory:
    """A fixed set of pool histories (replaced wholesale by :meth:`update`)."""

    def __init__(self, histories: Iterable[PoolHistory] | Mapping[Pool, PoolHistory] = ()) -> None:
        self._histories: dict[Pool, PoolHistory] = {}
        self.update(histories)

    def update(self, histories: Iterable[PoolHistory] | Mapping[Pool, PoolHistory]) -> None:
        items = histories.values() if isinstance(histories, Mapping) else histories
        self._histories = {h.pool: h for h in items}

    def histories(self, now: datetime) -> Mapping[Pool, PoolHistory]:
        return self._histories


__all__ = ["HistorySource", "StaticHistory"]
