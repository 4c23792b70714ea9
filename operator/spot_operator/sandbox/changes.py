"""What changed between two snapshots: the lines of the sandbox's timeline. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from spot_operator.sandbox.snapshot import (
    GONE_STATES,
    AgentSeen,
    InstanceSeen,
    ReplicaSeen,
    Snapshot,
    SwitchSeen,
)


@dataclass(frozen=True)
class Change:
    """One line of the timeline: ``kind`` names what happened, ``agent`` to whom (may be empty)."""

    kind: str
    agent: str
    text: str
    subject: str = ""  # the instance, replica or switch it is about


def usd(value: float) -> str:
    """Dollars with enough digits for a spot price (moto's are $0.00001)."""
    return f"${value:.4f}" if value >= 0.001 or value == 0 else f"${value:.6f}"


def _price(value: float | None) -> str:
    return "price not known yet" if value is None else f"{usd(value)}/h"


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
    saving = (now.primary_id, now.hourly_price, now.savings_percent)
    if (
        now.savings_percent is not None
        and now.hourly_price is not None
        and now.on_demand_price is not None
        and (before is None or (before.primary_id, before.hourly_price, before.savings_percent) != saving)
    ):
        text = (
            f"spot {usd(now.hourly_price)}/h against on-demand {usd(now.on_demand_price)}/h: "
            f"saving {now.savings_percent:.1f} %"
        )
        out.append(Change("saving", now.name, text, now.primary_id or ""))
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


def _owner(snap: Snapshot, instance_id: str) -> str:
    inst = snap.instances.get(instance_id)
    return inst.agent if inst is not None else ""


def changes(before: Snapshot, now: Snapshot) -> list[Change]:
    """What is new in ``now``: instances first (EC2 is where things happen), then traffic, then statuses."""
    out: list[Change] = []
    for iid, inst in now.instances.items():
        out.extend(_instance_changes(before.instances.get(iid), inst))
    for alloc, target in now.elastic_ips.items():
        previous = before.elastic_ips.get(alloc)
        if target and previous != target:
            verb = (
                f"traffic moved: Elastic IP {alloc} {previous} ->" if previous else f"Elastic IP {alloc} ->"
            )
            out.append(Change("elastic-ip", _owner(now, target), f"{verb} {target}", target))
    for arn, members in now.target_groups.items():
        if members != before.target_groups.get(arn, ()):
            who = ", ".join(members) or "nothing"
            owner = _owner(now, members[0]) if members else ""
            text = f"target group {arn.split('/')[1] if '/' in arn else arn} -> {who}"
            out.append(Change("target-group", owner, text, ",".join(members)))
    for name, agent in now.agents.items():
        out.extend(_agent_changes(before.agents.get(name), agent))
    for name, rep in now.replicas.items():
        out.extend(_replica_changes(before.replicas.get(name), rep))
    for name, sw in now.switches.items():
        out.extend(_switch_changes(before.switches.get(name), sw))
    return out
