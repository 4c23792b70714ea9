"""The periodic observe cycle: what EC2 and the Elastic IPs say, folded into every AgentState.

One ``describe_owned`` and one ``serving`` per region, for all agents, whatever their number. Regions are
observed concurrently; a region whose calls fail leaves its agents' state as it was and is reported in
:class:`ObserveStats` (and logged), the other regions are folded as usual.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from spot_operator.errors import CloudError
from spot_operator.planning.model import Instance
from spot_operator.ports import Ec2, ObservedInstance, Traffic
from spot_operator.state import AgentState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObserveStats:
    regions: int
    agents: int
    instances: int
    describe_calls: int
    serving_calls: int
    unowned: int  # instances tagged by us whose owner is no agent we know (deleted agents, other operators)
    seconds: float
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class _RegionView:
    region: str
    instances: tuple[ObservedInstance, ...]
    serving: Mapping[str, str | None]
    serving_called: bool


def group_by_owner(observed: Iterable[ObservedInstance]) -> dict[str, list[Instance]]:
    """Instances per owner uid, sorted by id. Pure."""
    grouped: dict[str, list[Instance]] = defaultdict(list)
    for obs in observed:
        grouped[obs.owner].append(obs.instance)
    return {owner: sorted(found, key=lambda i: i.instance_id) for owner, found in grouped.items()}


def serving_after(state: AgentState, serving: Mapping[str, str | None]) -> str | None:
    """What the agent's traffic points at after an observation. Pure.

    The Elastic IP is observed; target groups and DNS are not (the operator is the only one moving them),
    so an agent without an Elastic IP keeps what the operator last moved; no traffic at all: None.
    """
    target = state.traffic
    if target.elastic_ip_allocation_id:
        return state.observed_serving(serving.get(target.elastic_ip_allocation_id))
    if target.configured:
        return state.serving
    return None


def regions_of(agents: Mapping[str, AgentState]) -> dict[str, list[AgentState]]:
    by_region: dict[str, list[AgentState]] = defaultdict(list)
    for state in agents.values():
        by_region[state.spec.region].append(state)
    return dict(by_region)


async def _observe_region(ec2: Ec2, traffic: Traffic, region: str, states: list[AgentState]) -> _RegionView:
    allocation_ids = sorted(
        {s.traffic.elastic_ip_allocation_id for s in states if s.traffic.elastic_ip_allocation_id}
    )
    if allocation_ids:
        instances, serving = await asyncio.gather(
            ec2.describe_owned(region), traffic.serving(region, allocation_ids)
        )
    else:
        instances, serving = await ec2.describe_owned(region), {}
    return _RegionView(region, tuple(instances), serving, bool(allocation_ids))


async def observe_once(
    ec2: Ec2, traffic: Traffic, agents: Mapping[str, AgentState], now: datetime
) -> ObserveStats:
    started = time.perf_counter()
    by_region = regions_of(agents)
    results = await asyncio.gather(
        *(_observe_region(ec2, traffic, region, states) for region, states in by_region.items()),
        return_exceptions=True,
    )
    errors: list[str] = []
    instances = unowned = serving_calls = 0
    for (region, states), result in zip(by_region.items(), results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, CloudError):
                raise result
            log.warning(
                "observe %s failed, its %d agent(s) keep their last state: %s", region, len(states), result
            )
            errors.append(f"{region}: {result.code or type(result).__name__}: {result}")
            continue
        grouped = group_by_owner(result.instances)
        instances += len(result.instances)
        serving_calls += int(result.serving_called)
        known = {s.ref.uid for s in states}
        unowned += sum(len(found) for owner, found in grouped.items() if owner not in known)
        for state in states:
            async with state.lock:
                if not state.observe(grouped.get(state.ref.uid, []), now):
                    state.serving = serving_after(state, result.serving)
    return ObserveStats(
        regions=len(by_region),
        agents=len(agents),
        instances=instances,
        describe_calls=len(by_region),
        serving_calls=serving_calls,
        unowned=unowned,
        seconds=time.perf_counter() - started,
        errors=tuple(errors),
    )
