"""What the scorers know about each pool inside the running operator: the Spot Advisor band, the
on-demand price, and the spot prices the PriceBook has seen since start (a step function).

Interruptions and availability history come from the price store when one is configured; without
it the rules fall back to the advisor band and price volatility, which is what a fresh operator
knows anyway.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime

import numpy as np

from spot_operator.decisions.advisor import SpotAdvisor, maybe_load_advisor
from spot_operator.decisions.features import PoolHistory, PriceHistory
from spot_operator.planning.model import Pool
from spot_operator.runtime.operator import Operator
from spot_operator.runtime.prices import region_of_zone

MAX_POINTS = 2016  # a week of 5-minute points per pool


class OperatorHistory:
    """Implements :class:`spot_operator.decisions.history.HistorySource` from the operator's memory."""

    def __init__(self, op: Operator, advisor: SpotAdvisor | None = None) -> None:
        self.op = op
        self.advisor = advisor if advisor is not None else maybe_load_advisor()
        self._series: dict[Pool, list[tuple[float, float]]] = defaultdict(list)

    def _remember(self) -> None:
        for pool, obs in self.op.book.spot.items():
            series = self._series[pool]
            stamp = obs.at.timestamp()
            if not series or series[-1][0] < stamp:
                series.append((stamp, obs.price))
                del series[:-MAX_POINTS]

    def histories(self, now: datetime) -> Mapping[Pool, PoolHistory]:
        self._remember()
        out: dict[Pool, PoolHistory] = {}
        pools = set(self._series)
        for state in self.op.agents.values():
            pools.update(p for p in self.op.market_for(state).quotes if p.is_spot)
        for pool in pools:
            region = region_of_zone(pool.zone)
            series = self._series.get(pool)
            prices = None
            if series:
                prices = PriceHistory(np.array([t for t, _ in series]), np.array([p for _, p in series]))
            out[pool] = PoolHistory(
                pool=pool,
                prices=prices,
                on_demand_price=self.op.book.on_demand_price(region, pool.instance_type),
                advisor_band=self.advisor.band(region, pool.instance_type) if self.advisor else None,
            )
        return out
