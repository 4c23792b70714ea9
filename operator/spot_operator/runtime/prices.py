"""The price refresh: one incremental DescribeSpotPriceHistory per region for every agent, into a PriceBook.

:class:`PriceBook` keeps the latest spot price per pool and the on-demand price per type and region.
:func:`collect_prices_once` asks each region once for the union of its agents' instance types, from the
last timestamp it saw there, folds the answers into the book and hands the new observations to an
optional async ``sink`` (the price-history store). The merging rules are plain functions.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime

from spot_operator import metrics
from spot_operator.errors import CloudError
from spot_operator.planning.model import Pool
from spot_operator.ports import PriceObservation, SpotPriceSource
from spot_operator.state import AgentState

log = logging.getLogger(__name__)

# Linux products only: DescribeSpotPriceHistory is asked for "Linux/UNIX", and older accounts (and moto)
# answer "Linux/UNIX (Amazon VPC)" for the same price.
LINUX_PRODUCTS = frozenset({"Linux/UNIX", "Linux/UNIX (Amazon VPC)"})
_REGION = re.compile(r"^([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+)")

PriceSink = Callable[[Sequence[PriceObservation]], Awaitable[None]]


def region_of_zone(zone: str) -> str:
    """'us-east-1a' -> 'us-east-1'; local zones ('us-east-1-bos-1a') belong to their parent region."""
    match = _REGION.match(zone)
    if not match:
        raise ValueError(f"{zone!r} is not an availability zone name")
    return match.group(1)


def latest_by_pool(
    current: Mapping[Pool, PriceObservation],
    observations: Iterable[PriceObservation],
    products: frozenset[str] = LINUX_PRODUCTS,
) -> dict[Pool, PriceObservation]:
    """The newest observation per pool after adding ``observations``. Pure; ties go to the later one."""
    merged = dict(current)
    for obs in observations:
        if obs.product not in products:
            continue
        known = merged.get(obs.pool)
        if known is None or obs.at >= known.at:
            merged[obs.pool] = obs
    return merged


def newest_time(observations: Iterable[PriceObservation], since: datetime | None) -> datetime | None:
    """Where the next incremental request starts: the newest timestamp seen, never going back. Pure."""
    newest = since
    for obs in observations:
        if newest is None or obs.at > newest:
            newest = obs.at
    return newest


def instance_types_by_region(agents: Mapping[str, AgentState]) -> dict[str, list[str]]:
    """The union of candidate instance types per region, sorted. Pure."""
    union: dict[str, set[str]] = defaultdict(set)
    for state in agents.values():
        union[state.spec.region].update(state.spec.instance_types)
    return {region: sorted(types) for region, types in union.items()}


@dataclass
class PriceBook:
    spot: dict[Pool, PriceObservation] = field(default_factory=dict)
    on_demand: dict[str, dict[str, float]] = field(default_factory=dict)  # region -> type -> USD/hour

    def spot_price(self, pool: Pool) -> float | None:
        obs = self.spot.get(pool if pool.is_spot else Pool(pool.instance_type, pool.zone))
        return obs.price if obs else None

    def on_demand_price(self, region: str, instance_type: str) -> float | None:
        return self.on_demand.get(region, {}).get(instance_type)

    def pools(self, region: str, instance_types: Iterable[str]) -> dict[Pool, float]:
        """Latest spot price of every known pool of these types in the region."""
        wanted = set(instance_types)
        return {
            pool: obs.price
            for pool, obs in self.spot.items()
            if pool.instance_type in wanted and region_of_zone(pool.zone) == region
        }

    def add_spot(self, observations: Iterable[PriceObservation]) -> list[Pool]:
        """Fold observations in; returns the pools whose latest price changed."""
        before = self.spot
        self.spot = latest_by_pool(before, observations)
        return [p for p, obs in self.spot.items() if before.get(p) is not obs]


@dataclass(frozen=True)
class PriceStats:
    regions: int
    spot_calls: int
    observations: int
    pools_updated: int
    errors: tuple[str, ...] = ()


async def _collect_region(
    source: SpotPriceSource, region: str, types: list[str], since: datetime | None, fetched: Set[str]
) -> tuple[list[PriceObservation], dict[str, float], int]:
    """Incremental for the types already fetched here; a type new to the region (a new agent, a changed
    spec) gets its own request without ``since``, or its history before ``since`` would never arrive."""
    known = [t for t in types if t in fetched] if since is not None else types
    new = [t for t in types if t not in fetched] if since is not None else []
    asked = [(known, since)] if known else []
    if new:
        asked.append((new, None))
    spots, on_demand = await asyncio.gather(
        asyncio.gather(*(source.spot_prices(region, t, start) for t, start in asked)),
        source.on_demand_prices(region, types),
    )
    return [obs for spot in spots for obs in spot], on_demand, len(asked)


async def collect_prices_once(
    source: SpotPriceSource,
    agents: Mapping[str, AgentState],
    book: PriceBook,
    since_by_region: MutableMapping[str, datetime],
    sink: PriceSink | None = None,
    fetched_types: MutableMapping[str, set[str]] | None = None,
) -> PriceStats:
    """One refresh for every region the agents use; ``since_by_region`` advances as prices arrive.

    The sink gets each region's new observations before ``since`` advances there, so a sink failure
    (raised as CloudError or StoreUnavailable by the store) makes the next refresh ask again.
    ``fetched_types`` (region -> instance types) remembers what each region's ``since`` covers; without
    it, every wanted type counts as covered.
    """
    wanted = instance_types_by_region(agents)
    covered = fetched_types if fetched_types is not None else {r: set(t) for r, t in wanted.items()}
    results = await asyncio.gather(
        *(
            _collect_region(source, r, types, since_by_region.get(r), covered.get(r, set()))
            for r, types in wanted.items()
        ),
        return_exceptions=True,
    )
    errors: list[str] = []
    observations = updated = spot_calls = 0
    for region, result in zip(wanted, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, CloudError):
                raise result
            log.warning("price refresh of %s failed: %s", region, result)
            errors.append(f"{region}: {result.code or type(result).__name__}: {result}")
            continue
        spot, on_demand, calls = result
        spot_calls += calls
        book.on_demand.setdefault(region, {}).update(on_demand)
        if sink is not None and spot:
            await sink(spot)
        changed = book.add_spot(spot)
        for pool in changed:
            metrics.POOL_PRICE.labels(pool.name).set(book.spot[pool].price)
        newest = newest_time(spot, since_by_region.get(region))
        if newest is not None:
            since_by_region[region] = newest
            covered.setdefault(region, set()).update(wanted[region])
        observations += len(spot)
        updated += len(changed)
    return PriceStats(
        regions=len(wanted),
        spot_calls=spot_calls,
        observations=observations,
        pools_updated=updated,
        errors=tuple(errors),
    )
