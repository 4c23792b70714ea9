"""Which pools an agent may use and in what order: by expected cost, or by safety in an emergency."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from spot_operator.api import Capacity, Policy, SpotAgentSpec
from spot_operator.planning.model import Market, Pool

# The seeds' default bands: below 20 % risk spot is fine; 20-50 % only when it saves more than half;
# above 50 % stay on (or return to) on-demand.
LOW_RISK = 0.20
HIGH_RISK = 0.50
HIGH_RISK_MIN_SAVINGS = 0.50
# Expected cost of one interruption, in hours of the pool's own price: a replacement boots (~2 min of
# overlap) and the switch itself costs a little; downtime is priced by the workload's own figure.
INTERRUPTION_OVERHEAD_HOURS = 0.05
EXPECTED_DOWNTIME_HOURS = 2 / 60


def candidate_zones(spec: SpotAgentSpec, market: Market, pinned_zone: str | None = None) -> list[str]:
    """spec.zones, else the zones we know prices for in the region; one zone when data volumes pin it."""
    if pinned_zone is not None:
        return [pinned_zone]
    if spec.zones:
        return list(spec.zones)
    known = {p.zone for p in market.quotes if p.zone.startswith(spec.region)}
    return sorted(known)


def candidate_pools(
    spec: SpotAgentSpec, market: Market, lifecycle: Capacity, pinned_zone: str | None = None
) -> list[Pool]:
    zones = candidate_zones(spec, market, pinned_zone)
    return [Pool(t, z, lifecycle) for t in spec.instance_types for z in zones]


def in_candidates(spec: SpotAgentSpec, pool: Pool) -> str | None:
    """None when the pool is one the spec allows; else why not."""
    if pool.instance_type not in spec.instance_types:
        return f"instance type {pool.instance_type} is not in spec.instanceTypes"
    if not pool.zone.startswith(spec.region):
        return f"zone {pool.zone} is not in region {spec.region}"
    if spec.zones and pool.zone not in spec.zones:
        return f"zone {pool.zone} is not in spec.zones"
    return None


def expected_hourly_cost(pool: Pool, market: Market, policy: Policy) -> float | None:
    """Price plus what interruptions are expected to cost per hour in that pool."""
    price = market.price(pool)
    if price is None:
        return None
    risk = market.risk(pool)
    per_interruption = price * INTERRUPTION_OVERHEAD_HOURS + (
        policy.downtime_cost_per_hour * EXPECTED_DOWNTIME_HOURS
    )
    return price + risk * per_interruption


def savings_fraction(pool: Pool, market: Market) -> float | None:
    price = market.price(pool)
    on_demand = market.on_demand_prices.get(pool.instance_type)
    if price is None or not on_demand:
        return None
    return 1.0 - price / on_demand


def eligible(pool: Pool, market: Market, policy: Policy) -> bool:
    """A spot pool a planned move may go to: within the risk bands and the workload's own limit."""
    if not pool.is_spot:
        return True
    if pool in market.unavailable or market.price(pool) is None:
        return False
    risk = market.risk(pool)
    if risk > policy.max_interruption_risk or risk > HIGH_RISK:
        return False
    if risk >= LOW_RISK:
        saving = savings_fraction(pool, market)
        return saving is not None and saving > HIGH_RISK_MIN_SAVINGS
    return True


def _cost_key(pool: Pool, market: Market, policy: Policy) -> tuple[int, float, float, str]:
    cost = expected_hourly_cost(pool, market, policy)
    return (cost is None, cost if cost is not None else 0.0, market.risk(pool), str(pool))


def _safety_key(pool: Pool, market: Market) -> tuple[float, int, float, str]:
    price = market.price(pool)
    return (market.risk(pool), price is None, price if price is not None else 0.0, str(pool))


def rank_by_cost(pools: Iterable[Pool], market: Market, policy: Policy) -> list[Pool]:
    return sorted(pools, key=lambda p: _cost_key(p, market, policy))


def rank_by_safety(pools: Iterable[Pool], market: Market) -> list[Pool]:
    return sorted(pools, key=lambda p: _safety_key(p, market))


def _dedupe(pools: Iterable[Pool]) -> tuple[Pool, ...]:
    seen: dict[Pool, None] = {}
    for pool in pools:
        seen.setdefault(pool, None)
    return tuple(seen)


def on_demand_candidates(
    spec: SpotAgentSpec, market: Market, near: Pool | None, pinned_zone: str | None
) -> list[Pool]:
    """On-demand pools, the same type and zone as ``near`` first, then by price."""
    pools = rank_by_cost(candidate_pools(spec, market, Capacity.ON_DEMAND, pinned_zone), market, spec.policy)
    if near is not None and near.instance_type in spec.instance_types:
        same = near.as_on_demand()
        if pinned_zone is None or same.zone == pinned_zone:
            pools = [same, *[p for p in pools if p != same]]
    return [p for p in pools if p not in market.unavailable]


def initial_candidates(spec: SpotAgentSpec, market: Market) -> tuple[Pool, ...]:
    """Where a first (or repair) primary goes."""
    on_demand = on_demand_candidates(spec, market, None, None)
    if spec.capacity is Capacity.ON_DEMAND:
        return _dedupe(on_demand)
    spot = [p for p in candidate_pools(spec, market, Capacity.SPOT) if eligible(p, market, spec.policy)]
    ranked = rank_by_cost(spot, market, spec.policy)
    if not ranked:
        # Nothing priced or safe yet: try every candidate, safest first, rather than wait.
        ranked = [
            p
            for p in rank_by_safety(candidate_pools(spec, market, Capacity.SPOT), market)
            if p not in market.unavailable
        ]
    fallback = on_demand if spec.policy.on_demand_fallback else []
    return _dedupe([*ranked, *fallback])


def emergency_candidates(
    spec: SpotAgentSpec, market: Market, leaving: Pool | None, pinned_zone: str | None = None
) -> tuple[Pool, ...]:
    """Where a replacement goes when the primary is being taken away.

    Spot pools other than the failing one, safest first; on-demand first instead when the workload asks
    for on-demand fallback or runs on on-demand; on-demand always last, so an emergency never ends with
    no primary for want of spot capacity.
    """
    on_demand = on_demand_candidates(spec, market, leaving, pinned_zone)
    if spec.capacity is Capacity.ON_DEMAND:
        return _dedupe(on_demand)
    spot = [
        p
        for p in rank_by_safety(candidate_pools(spec, market, Capacity.SPOT, pinned_zone), market)
        if p != leaving and p not in market.unavailable
    ]
    if spec.policy.on_demand_fallback:
        return _dedupe([*on_demand, *spot])
    return _dedupe([*spot, *on_demand])


def standby_candidates(
    spec: SpotAgentSpec, market: Market, primary: Pool | None, pinned_zone: str | None, safest: bool
) -> tuple[Pool, ...]:
    """Pools for a replica: never the primary's pool (one reclaim must not take both)."""
    if spec.capacity is Capacity.ON_DEMAND:
        pools = on_demand_candidates(spec, market, None, pinned_zone)
    else:
        spot = [
            p
            for p in candidate_pools(spec, market, Capacity.SPOT, pinned_zone)
            if p not in market.unavailable
        ]
        pools = rank_by_safety(spot, market) if safest else rank_by_cost(spot, market, spec.policy)
    others = [p for p in pools if primary is None or p.name != primary.name]
    # Prefer another zone too: zonal capacity events hit every type in the zone.
    if primary is not None:
        others = sorted(others, key=lambda p: p.zone == primary.zone)  # stable: keeps the ranking
    return _dedupe(others)


def cheapest_candidates(
    spec: SpotAgentSpec, market: Market, current: Pool | None, pinned_zone: str | None
) -> tuple[Pool, ...]:
    spot = [
        p
        for p in candidate_pools(spec, market, Capacity.SPOT, pinned_zone)
        if eligible(p, market, spec.policy) and p != current
    ]
    return _dedupe(rank_by_cost(spot, market, spec.policy))


def first_not_in(pools: Sequence[Pool], exclude: Iterable[Pool]) -> Pool | None:
    banned = set(exclude)
    return next((p for p in pools if p not in banned), None)
