"""What the sandbox sees at one instant, and what changed since the last look. Pure.

A :class:`Snapshot` is read from the outside, as a person would look: the custom resources' statuses
from the Kubernetes API, the instances and the Elastic IPs from EC2 (moto), the prices from the store.
:func:`changes` turns two snapshots into the timeline's lines.
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
        prices=dict(prices),
    )


# ------------------------------------------------------------------------------------------ changes


@dataclass(frozen=True)
class Change:
    """One line of the timeline: ``kind`` names what happened, ``agent`` to whom (may be empty)."""

    kind: str
    agent: str
    text: str
    subject: str = ""  # the instance, replica or switch it is about


def _price(value: float | None) -> str:
    return "price unknown" if value is None else f"${value:.4f}/h"


def _agent_changes(before: AgentSeen | None, now: AgentSeen) -> list[Change]:
    out = []
    if now.primary_id and (before is None or before.primary_id != now.primary_id):
        out.append(
            Change(
                "primary",
                now.name,
                f"primary {now.primary_id} in {now.primary_pool} ({_price(now.hourly_price)})",
                now.primary_id,
            )
        )
    if now.phase and (before is None or before.phase != now.phase):
        out.append(Change(f"agent-{now.phase}", now.name, f"SpotAgent {now.phase}", now.name))
    return out


def _replica_changes(before: ReplicaSeen | None, now: ReplicaSeen) -> list[Change]:
    if before is None:
        text = f"Replica {now.name} created ({now.reason})"
        out = [Change("replica-created", now.agent, text, now.name)]
    else:
        out = []
    if now.phase and (before is None or before.phase != now.phase):
        where = f" on {now.instance_id} in {now.pool}" if now.instance_id else ""
        out.append(
            Change(f"replica-{now.phase}", now.agent, f"Replica {now.name} {now.phase}{where}", now.name)
        )
    return out


def _switch_changes(before: SwitchSeen | None, now: SwitchSeen) -> list[Change]:
    out = []
    if before is None:
        text = f"SwitchRequest {now.name} opened ({now.reason})"
        out.append(Change("switch-opened", now.agent, text, now.name))
    if now.phase and (before is None or before.phase != now.phase):
        detail = ""
        if now.phase == "Completed":
            parts = [
                f"{label} {value:.2f} s"
                for label, value in (
                    ("launch", now.launch_seconds),
                    ("cutover", now.cutover_seconds),
                    ("downtime", now.downtime_seconds),
                )
                if value is not None
            ]
            detail = f" ({', '.join(parts)})" if parts else ""
        out.append(
            Change(
                f"switch-{now.phase}", now.agent, f"SwitchRequest {now.name} {now.phase}{detail}", now.name
            )
        )
    return out


def _instance_changes(before: InstanceSeen | None, now: InstanceSeen) -> list[Change]:
    if before is None and now.live:
        text = f"instance {now.instance_id} launched in {now.pool} ({now.lifecycle}) as {now.role}"
        return [Change("instance-launched", now.agent, text, now.instance_id)]
    if before is None:
        return []
    out = []
    if before.role != now.role and now.live:
        text = f"instance {now.instance_id} is now {now.role} (was {before.role})"
        out.append(Change("instance-role", now.agent, text, now.instance_id))
    if now.state in GONE_STATES and before.state not in GONE_STATES:
        text = f"instance {now.instance_id} ({before.role}) terminated"
        out.append(Change("instance-terminated", now.agent, text, now.instance_id))
    return out


def changes(before: Snapshot, now: Snapshot) -> list[Change]:
    """What is new in ``now``: instances first (EC2 is where things happen), then traffic, then statuses."""
    out: list[Change] = []
    for iid, inst in now.instances.items():
        out.extend(_instance_changes(before.instances.get(iid), inst))
    for alloc, target in now.elastic_ips.items():
        if target and before.elastic_ips.get(alloc) != target:
            inst = now.instances.get(target)
            agent = inst.agent if inst is not None else ""
            out.append(Change("elastic-ip", agent, f"Elastic IP {alloc} -> {target}", target))
    for name, agent in now.agents.items():
        out.extend(_agent_changes(before.agents.get(name), agent))
    for name, rep in now.replicas.items():
        out.extend(_replica_changes(before.replicas.get(name), rep))
    for name, sw in now.switches.items():
        out.extend(_switch_changes(before.switches.get(name), sw))
    return out
