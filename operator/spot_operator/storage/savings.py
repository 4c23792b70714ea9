"""Savings of one SpotAgent: its switch history and the clean series, computed by ``prices.savings``."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime

from sqlalchemy.orm import Session

from spot_operator.api import Capacity
from spot_operator.planning.model import Pool
from spot_operator.ports import AgentSavings
from spot_operator.prices.savings import Series, compute_savings, epoch, stretches_from_switches
from spot_operator.prices.zones import region_of

from .history import switches
from .pools import DEFAULT_PRODUCT
from .series import on_demand_prices, recent_price_arrays


def savings_for(
    session: Session,
    agent: str,
    now: datetime,
    hours: int = 48,
    days: int = 30,
    product: str = DEFAULT_PRODUCT,
) -> AgentSavings:
    """Hourly (last ``hours``), daily (last ``days``) and to-date savings of ``agent`` ('<ns>/<name>').

    To date means over the clean series still kept (``clean_retention_days``).
    """
    completed = [s for s in switches(session, agent) if s.completed_at is not None]
    now_s = epoch(now)
    if not completed:
        return compute_savings(agent, [], {}, now_s, hours, days)
    pools = {Pool(s.to_pool.instance_type, s.to_pool.zone): s.to_pool.lifecycle for s in completed}
    od = on_demand_prices(session, list(pools), product)
    by_pool: dict[Hashable, float] = {}
    for s in completed:
        price = od.get((region_of(s.to_pool.zone), s.to_pool.instance_type))
        if price is not None:
            by_pool[s.to_pool] = price
    switch_points = [
        (epoch(s.completed_at), s.to_pool, s.to_pool.lifecycle is Capacity.SPOT)
        for s in completed
        if s.completed_at is not None
    ]
    stretches = stretches_from_switches(switch_points, by_pool, now_s)
    spot_pools = sorted(
        {Pool(s.to_pool.instance_type, s.to_pool.zone) for s in completed if s.to_pool.is_spot}
    )
    since = min(s.completed_at for s in completed if s.completed_at is not None)
    arrays = recent_price_arrays(session, spot_pools, since, now, product)
    series: dict[Hashable, Series] = {pool: Series(a.times, a.prices) for pool, a in arrays.items()}
    return compute_savings(agent, stretches, series, now_s, hours, days)
