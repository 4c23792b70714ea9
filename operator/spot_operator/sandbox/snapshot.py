"""What the sandbox sees at one instant. Pure.

A :class:`Snapshot` is read from the outside, as a person would look: the custom resources' statuses
from the Kubernetes API, the instances, Elastic IPs and target groups from EC2 (moto), the prices from
the store. :mod:`.changes` turns two snapshots into the timeline's lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spot_operator.planning.model import InstanceState
from spot_operator.ports import ObservedInstance

LIVE_STATES = frozenset({InstanceState.PENDING.value, InstanceState.RUNNING.value})
GONE_STATES = frozenset({InstanceState.SHUTTING_DOWN.value, InstanceState.TERMINATED.value})


@dataclass(frozen=True)
class AgentSeen:
    name: str
    mode: str
    phase: str | None = None
    primary_id: str | None = None
    primary_pool: str | None = None
    hourly_price: float | None = None
    savings_hourly: float | None = None
    savings_percent: float | None = None

    @property
    def on_demand_price(self) -> float | None:
        """The on-demand price the operator compares with: its price plus what it saves per hour."""
        if self.hourly_price is None or self.savings_hourly is None:
            return None
        return self.hourly_price + self.savings_hourly


@dataclass(frozen=True)
class ReplicaSeen:
    name: str
    agent: str
    reason: str
    phase: str | None = None
    instance_id: str | None = None
    pool: str | None = None


@dataclass(frozen=True)
class SwitchSeen:
    name: str
    agent: str
    reason: str
    phase: str | None = None
    old_instance_id: str | None = None
    new_instance_id: str | None = None
    new_pool: str | None = None
    launch_seconds: float | None = None
    cutover_seconds: float | None = None
    downtime_seconds: float | None = None


@dataclass(frozen=True)
class InstanceSeen:
    instance_id: str
    agent: str  # the SpotAgent's name
    role: str
    state: str
    pool: str
    lifecycle: str

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES


@dataclass(frozen=True)
class Snapshot:
    agents: Mapping[str, AgentSeen] = field(default_factory=dict)
    replicas: Mapping[str, ReplicaSeen] = field(default_factory=dict)
    switches: Mapping[str, SwitchSeen] = field(default_factory=dict)
    instances: Mapping[str, InstanceSeen] = field(default_factory=dict)
    elastic_ips: Mapping[str, str | None] = field(default_factory=dict)  # allocation -> instance
    target_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # ARN -> registered instances
    prices: Mapping[str, float] = field(default_factory=dict)  # pool name -> latest spot price (store)

    def live(self, agent: str, role: str | None = None) -> list[InstanceSeen]:
        return [
            i
            for i in self.instances.values()
            if i.agent == agent and i.live and (role is None or i.role == role)
        ]

    def replicas_of(self, agent: str, reason: str | None = None) -> list[ReplicaSeen]:
        return [
            r for r in self.replicas.values() if r.agent == agent and (reason is None or r.reason == reason)
        ]


# ------------------------------------------------------------------------------------------ reading


def _status(body: Mapping[str, Any]) -> dict[str, Any]:
    return dict(body.get("status") or {})


def agent_seen(body: Mapping[str, Any]) -> AgentSeen:
    status = _status(body)
    primary = status.get("primary") or {}
    savings = status.get("savings") or {}
    return AgentSeen(
        name=str(body["metadata"]["name"]),
        mode=str((body.get("spec") or {}).get("mode", "auto-switch")),
        phase=status.get("phase"),
        primary_id=primary.get("instanceId"),
        primary_pool=primary.get("pool"),
        hourly_price=primary.get("hourlyPrice"),
        savings_hourly=savings.get("hourlyUsd") if savings else None,
        savings_percent=savings.get("percent") if savings else None,
    )


def replica_seen(body: Mapping[str, Any]) -> ReplicaSeen:
    spec = body.get("spec") or {}
    status = _status(body)
    return ReplicaSeen(
        name=str(body["metadata"]["name"]),
        agent=str((spec.get("agentRef") or {}).get("name", "")),
        reason=str(spec.get("reason", "manual")),
        phase=status.get("phase"),
        instance_id=status.get("instanceId"),
        pool=status.get("pool"),
    )


def switch_seen(body: Mapping[str, Any]) -> SwitchSeen:
    spec = body.get("spec") or {}
    status = _status(body)
    timings = status.get("timings") or {}
    return SwitchSeen(
        name=str(body["metadata"]["name"]),
        agent=str((spec.get("agentRef") or {}).get("name", "")),
        reason=str(spec.get("reason", "manual")),
        phase=status.get("phase"),
        old_instance_id=status.get("oldInstanceId"),
        new_instance_id=status.get("newInstanceId"),
        new_pool=status.get("newPool"),
        launch_seconds=timings.get("launchSeconds"),
        cutover_seconds=timings.get("cutoverSeconds"),
        downtime_seconds=timings.get("downtimeSeconds"),
    )


def instance_seen(observed: ObservedInstance) -> InstanceSeen:
    inst = observed.instance
    return InstanceSeen(
        instance_id=inst.instance_id,
        agent=observed.agent.rpartition("/")[2],
        role=inst.role.value,
        state=inst.state.value,
        pool=inst.pool.name,
        lifecycle=inst.pool.lifecycle.value,
    )


def snapshot(
    agents: Iterable[Mapping[str, Any]],
    replicas: Iterable[Mapping[str, Any]],
    switches: Iterable[Mapping[str, Any]],
    instances: Iterable[ObservedInstance],
    elastic_ips: Mapping[str, str | None],
    target_groups: Mapping[str, Iterable[str]],
    prices: Mapping[str, float],
) -> Snapshot:
    a = [agent_seen(b) for b in agents]
    r = [replica_seen(b) for b in replicas]
    s = [switch_seen(b) for b in switches]
    i = [instance_seen(o) for o in instances]
    return Snapshot(
        agents={x.name: x for x in a},
        replicas={x.name: x for x in r},
        switches={x.name: x for x in s},
        instances={x.instance_id: x for x in i},
        elastic_ips=dict(elastic_ips),
        target_groups={arn: tuple(sorted(members)) for arn, members in target_groups.items()},
        prices=dict(prices),
    )
