"""Notices and lost primaries: open the emergency switch (or the rebalance replica) that answers them.

Emergencies act in every mode, paused or not, and need nothing but what is already known: no price
history, no model. The switch's name is derived from the instance it replaces, so the same notice
arriving twice (agent and SQS) opens one switch.
"""

from __future__ import annotations

from collections.abc import Sequence

from spot_operator.api import (
    Capacity,
    Mode,
    ReplicaReason,
    SwitchReason,
    SwitchRequestSpec,
    SwitchTarget,
    TargetKind,
)
from spot_operator.api.common import ObjectRef
from spot_operator.api.switchrequest import SWITCH_FINAL_PHASES, SwitchPhase
from spot_operator.planning.actions import CreateReplica, ForgetNotice, OpenSwitch
from spot_operator.planning.facts import IN_FLIGHT_PHASES, Builder, Facts
from spot_operator.planning.model import Instance, Notice, NoticeKind, ReplicaObject, Role, SwitchObject
from spot_operator.planning.naming import failover_name, rebalance_name

REBALANCE_PRIORITY = 90


def _switch_phase(sw: SwitchObject, b: Builder) -> SwitchPhase:
    written = b.switch_status.get(sw.name)
    return written.phase if written else sw.status.phase


def open_switch(
    f: Facts,
    b: Builder,
    name: str,
    target: SwitchTarget,
    reason: SwitchReason,
    message: str,
    priority: int | None = None,
) -> SwitchObject:
    spec = SwitchRequestSpec(
        agent_ref=ObjectRef(name=f.view.name), target=target, reason=reason, priority=priority
    )
    b.emit(OpenSwitch(f"switch-object/{name}", name, target, reason, priority, message))
    return SwitchObject(name=name, uid="", spec=spec, created_at=f.now, managed=True)


def open_failover(
    f: Facts, b: Builder, switches: Sequence[SwitchObject], lost: str, cause: str
) -> SwitchObject | None:
    """One emergency switch away from ``lost``: onto a Ready replica if there is one, else a replacement."""
    for sw in switches:
        phase = _switch_phase(sw, b)
        if phase in IN_FLIGHT_PHASES and sw.status.new_instance_id != lost:
            return None  # a switch already moving the primary elsewhere carries the failover
        if sw.emergency and phase is SwitchPhase.PENDING:
            return None
    prefix = failover_name(f.view.name, lost)
    attempt = 1 + sum(1 for s in switches if s.name == prefix or s.name.startswith(prefix + "-"))
    name = failover_name(f.view.name, lost, attempt)
    ready = f.ready_replicas(exclude=lost)
    if ready:
        rep = ready[0][0]
        target = SwitchTarget(kind=TargetKind.REPLICA, replica_ref=rep.name)
        what = f"promoting Replica {rep.name}"
    else:
        on_demand = f.spec.capacity is Capacity.ON_DEMAND or f.spec.policy.on_demand_fallback
        target = SwitchTarget(kind=TargetKind.ON_DEMAND if on_demand else TargetKind.CHEAPEST)
        what = "launching a replacement" + (
            " on on-demand" if on_demand else " in the safest other spot pool"
        )
    message = f"{cause}; {what}"
    b.event("Failover", message, warning=True)
    return open_switch(f, b, name, target, SwitchReason.EMERGENCY, message)


def _rebalance(
    f: Facts, b: Builder, primary: Instance, switches: Sequence[SwitchObject]
) -> ReplicaObject | None:
    if f.spec.mode is not Mode.AUTO_SWITCH or f.spec.paused:
        return None
    name = rebalance_name(f.view.name, primary.instance_id)
    if name in f.replicas_by_name:
        return None
    if any(_switch_phase(s, b) in IN_FLIGHT_PHASES for s in switches):
        return None
    b.emit(CreateReplica(f"replica-object/{name}", name, ReplicaReason.REBALANCE))
    b.event("RebalanceRecommendation", f"{primary.instance_id}: launching a replica in the safest other pool")
    return ReplicaObject(name=name, uid="", reason=ReplicaReason.REBALANCE, created_at=f.now, managed=True)


def plan_notices(
    f: Facts, b: Builder, switches: Sequence[SwitchObject]
) -> tuple[list[SwitchObject], list[ReplicaObject]]:
    """React to each pending notice. Returns the switches and replicas opened, for the rest of the plan."""
    opened: list[SwitchObject] = []
    replicas: list[ReplicaObject] = []
    primary = f.primary
    for notice in sorted(f.view.notices, key=lambda n: (n.received_at, n.instance_id, n.kind)):
        inst = f.by_id.get(notice.instance_id)
        if inst is None or not inst.live:
            if primary is not None or notice.instance_id != f.view.last_primary_id:
                b.emit(ForgetNotice(f"forget/{notice.instance_id}/{notice.kind}", notice))
            continue
        if inst.role is Role.RETIRING:
            draining = any(
                s.status.old_instance_id == inst.instance_id
                and _switch_phase(s, b) not in SWITCH_FINAL_PHASES
                for s in switches
            )
            if not draining:  # already replaced: the notice changes nothing any more
                b.emit(ForgetNotice(f"forget/{notice.instance_id}/{notice.kind}", notice))
            continue
        if inst.role is Role.REPLICA and notice.kind is NoticeKind.REBALANCE:
            # A standby at elevated risk is still a standby: it serves a failover until it is actually
            # interrupted (then its own planner replaces it). Noted, then forgotten.
            b.event(
                "RebalanceRecommendation",
                f"{inst.instance_id} (a replica in {inst.pool}): kept until an interruption notice",
            )
            b.emit(ForgetNotice(f"forget/{notice.instance_id}/{notice.kind}", notice))
            continue
        if inst is not primary or inst.role is not Role.PRIMARY:
            continue  # a replica's own planner reads the notice
        if notice.emergency:
            sw = open_failover(f, b, [*switches, *opened], inst.instance_id, _describe(notice))
            if sw is not None:
                opened.append(sw)
        elif notice.kind is NoticeKind.REBALANCE and f.emergency_notice(inst.instance_id) is None:
            # With an interruption notice for the same instance, its failover answers both.
            rep = _rebalance(f, b, inst, [*switches, *opened])
            if rep is not None:
                replicas.append(rep)
    return opened, replicas


def _describe(notice: Notice) -> str:
    when = f", deadline {notice.deadline.isoformat()}" if notice.deadline else ""
    return f"{notice.kind.value} notice for {notice.instance_id} via {notice.source}{when}"
