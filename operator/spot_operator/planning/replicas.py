"""Replicas: how many the mode wants, and each Replica's instance and phase.

manual-replica keeps exactly one operator-made standby in another pool and makes a new one after every
promotion. auto-switch keeps none, except the one a rebalance recommendation asks for (promoted once
Ready when the policy says 'replace'). off keeps none. Replicas a person creates are kept in any mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from spot_operator.api import (
    Capacity,
    Mode,
    RebalanceAction,
    ReplicaPhase,
    ReplicaReason,
    ReplicaStatus,
    SwitchReason,
    SwitchTarget,
    TargetKind,
)
from spot_operator.api.switchrequest import SWITCH_FINAL_PHASES, SwitchPhase
from spot_operator.planning.actions import CreateReplica, LaunchInstance, TerminateInstance
from spot_operator.planning.backoff import retry_delay
from spot_operator.planning.conditions import set_condition
from spot_operator.planning.facts import Builder, Facts
from spot_operator.planning.failover import REBALANCE_PRIORITY, open_switch
from spot_operator.planning.model import Pool, ReplicaObject, Role, SwitchObject
from spot_operator.planning.naming import rebalance_name, standby_name
from spot_operator.planning.pools import in_candidates, standby_candidates

R = ReplicaPhase
FINAL = (R.PROMOTED, R.TERMINATED, R.FAILED)


def _set(
    rep: ReplicaObject, b: Builder, phase: ReplicaPhase, message: str, reason: str = "", **changes: object
) -> None:
    f = b.facts
    written = b.replica_status.get(rep.name)
    current = written or ReplicaStatus(
        phase=rep.phase or R.LAUNCHING, instance_id=rep.instance_id, pool=rep.pool, ready_at=rep.ready_at
    )
    if current.phase in FINAL and phase is not current.phase:
        return
    conditions = set_condition(
        current.conditions, "Ready", phase is R.READY, reason or phase.value, message, f.now
    )
    if phase is not rep.phase and (written is None or written.phase is not phase):
        b.event(
            f"Replica{phase.value}",
            f"{rep.name}: {message}",
            f"Replica/{rep.name}",
            warning=phase is R.FAILED,
        )
    b.replica_status[rep.name] = current.model_copy(
        update={"phase": phase, "message": message, "conditions": conditions, **changes}
    )


def _retire(rep: ReplicaObject, b: Builder, message: str) -> None:
    _set(rep, b, R.TERMINATED, message, "NotNeeded")


def _desired_count(f: Facts, b: Builder, replicas: Sequence[ReplicaObject]) -> list[ReplicaObject]:
    """Create or retire operator-made replicas to match the mode. Returns replicas created."""
    created: list[ReplicaObject] = []
    primary = f.primary
    mode = f.spec.mode
    active = [r for r in replicas if not r.deleting and b.replica_phase(r) not in FINAL]
    standbys = sorted(
        (r for r in active if r.managed and r.reason is ReplicaReason.MANUAL),
        key=lambda r: (r.created_at, r.name),
    )
    if mode is Mode.MANUAL_REPLICA:
        for extra in standbys[1:]:
            _retire(extra, b, "more than one standby; keeping the oldest")
        if not standbys and primary is not None and not f.spec.paused:
            name = standby_name(f.view.name, f.now)
            if name not in f.replicas_by_name and b.emit(
                CreateReplica(f"replica-object/{name}", name, ReplicaReason.MANUAL)
            ):
                b.event("StandbyCreated", f"creating standby {name}")
                created.append(
                    ReplicaObject(
                        name=name, uid="", reason=ReplicaReason.MANUAL, created_at=f.now, managed=True
                    )
                )
    else:
        for standby in standbys:
            _retire(standby, b, f"mode is {mode.value}: no standing replica")
    for rep in active:
        if not (rep.managed and rep.reason is ReplicaReason.REBALANCE):
            continue
        if mode is not Mode.AUTO_SWITCH:
            _retire(rep, b, f"mode is {mode.value}")
        elif primary is not None and rep.name != rebalance_name(f.view.name, primary.instance_id):
            inst = f.instance_for(rep.purpose)
            if inst is None or inst.role is Role.REPLICA:
                _retire(rep, b, "the primary it protected was already replaced")
    return created


def _candidates(rep: ReplicaObject, f: Facts) -> tuple[tuple[Pool, ...], str | None]:
    primary = f.primary
    pinned = f.volumes_pin_zone()
    if rep.pool:
        lifecycle = Capacity.ON_DEMAND if f.spec.capacity is Capacity.ON_DEMAND else Capacity.SPOT
        pool = Pool.parse(rep.pool, lifecycle)
        why = in_candidates(f.spec, pool)
        if why is None and primary is not None and pool.name == primary.pool.name:
            why = "it is the primary's pool: one reclaim would take both"
        if why is None and pinned is not None and pool.zone != pinned:
            why = f"data volumes keep every instance in {pinned}"
        return ((pool,) if why is None else ()), why
    pools = standby_candidates(
        f.spec,
        f.market,
        primary.pool if primary else None,
        pinned,
        safest=rep.reason is not ReplicaReason.MANUAL,
    )
    return pools, None


def _maintain(
    rep: ReplicaObject, f: Facts, b: Builder, switches: Sequence[SwitchObject]
) -> SwitchObject | None:
    inst = f.instance_for(rep.purpose)
    phase = b.replica_phase(rep)
    if rep.deleting or phase in FINAL:
        if inst is not None and inst.role is Role.REPLICA:
            b.emit(
                TerminateInstance(
                    f"terminate/{inst.instance_id}", inst.instance_id, f"Replica {rep.name} ended"
                ),
                (inst.instance_id,),
            )
        return None
    if inst is not None and inst.role is Role.PRIMARY:
        _set(rep, b, R.PROMOTED, f"{inst.instance_id} is now the primary", "Promoted")
        return None
    if inst is None:
        if rep.instance_id:
            lost = f.by_id.get(rep.instance_id)
            state = lost.state.value if lost else "gone"
            _set(rep, b, R.FAILED, f"instance {rep.instance_id} is {state}", "InstanceLost")
            return None
        pools, invalid = _candidates(rep, f)
        if invalid:
            _set(rep, b, R.FAILED, f"pool {rep.pool}: {invalid}", "InvalidPool")
            return None
        failure = f.view.launch_failures.get(rep.launch_key)
        attempt = 0
        if failure is not None:
            attempt = failure.attempts
            if failure.attempts >= f.settings.max_launch_attempts:
                _set(
                    rep,
                    b,
                    R.FAILED,
                    f"launch failed {failure.attempts} times: {failure.message}",
                    failure.reason,
                )
                return None
            retry_at = failure.at + timedelta(
                seconds=retry_delay(f.settings.launch_retry_seconds, failure.attempts)
            )
            if f.now < retry_at:
                b.requeue((retry_at - f.now).total_seconds())
                _set(rep, b, R.LAUNCHING, f"launch failed ({failure.message}); retrying", failure.reason)
                return None
        if not pools:
            b.requeue(f.settings.launch_retry_seconds)
            _set(rep, b, R.LAUNCHING, "no pool other than the primary's has capacity", "NoCandidatePool")
            return None
        b.emit(LaunchInstance(rep.launch_key, pools, Role.REPLICA, purpose=rep.purpose, attempt=attempt))
        _set(rep, b, R.LAUNCHING, f"launching in {pools[0]}", "Launching")
        return None

    where = {"instance_id": inst.instance_id, "pool": str(inst.pool)}
    if f.emergency_notice(inst.instance_id) is not None:
        b.emit(
            TerminateInstance(f"terminate/{inst.instance_id}", inst.instance_id, "replica interrupted"),
            (inst.instance_id,),
        )
        _set(rep, b, R.FAILED, f"{inst.instance_id} is being interrupted", "Interrupted", **where)
        return None
    if f.ready(inst):
        _set(
            rep,
            b,
            R.READY,
            f"{inst.instance_id} in {inst.pool} is ready",
            "Ready",
            sync_progress=100,
            ready_at=rep.ready_at or f.now,
            **where,
        )
        return _maybe_replace_primary(rep, f, b, switches)
    age = (f.now - rep.created_at).total_seconds()
    if age > f.settings.replica_ready_timeout_seconds:
        b.emit(
            TerminateInstance(f"terminate/{inst.instance_id}", inst.instance_id, "replica not ready in time"),
            (inst.instance_id,),
        )
        _set(rep, b, R.FAILED, f"{inst.instance_id} did not become ready in time", "ReadyTimeout", **where)
        return None
    b.requeue(f.settings.wait_poll_seconds)
    if f.healthy(inst) or inst.state.value == "running":
        _set(
            rep,
            b,
            R.SYNCING,
            f"{inst.instance_id} is running; syncing ({inst.sync_progress}%)",
            "Syncing",
            sync_progress=min(inst.sync_progress, 99),
            **where,
        )
    else:
        _set(rep, b, R.LAUNCHING, f"{inst.instance_id} is {inst.state.value}", "Launching", **where)
    return None


def _maybe_replace_primary(
    rep: ReplicaObject, f: Facts, b: Builder, switches: Sequence[SwitchObject]
) -> SwitchObject | None:
    """auto-switch + rebalance 'replace': move onto the rebalance replica as soon as it is Ready."""
    primary = f.primary
    if (
        rep.reason is not ReplicaReason.REBALANCE
        or f.spec.mode is not Mode.AUTO_SWITCH
        or f.spec.policy.rebalance_action is not RebalanceAction.REPLACE
        or primary is None
        or rep.name != rebalance_name(f.view.name, primary.instance_id)
        or any(s.name == rep.name for s in switches)
    ):
        return None
    if any(_phase(sw, b) not in SWITCH_FINAL_PHASES for sw in switches):
        return None
    target = SwitchTarget(kind=TargetKind.REPLICA, replica_ref=rep.name)
    message = f"rebalance recommendation for {primary.instance_id}: moving onto {rep.name}"
    return open_switch(f, b, rep.name, target, SwitchReason.EMERGENCY, message, REBALANCE_PRIORITY)


def _phase(sw: SwitchObject, b: Builder) -> SwitchPhase:
    written = b.switch_status.get(sw.name)
    return written.phase if written else sw.status.phase


def plan_replicas(
    f: Facts, b: Builder, replicas: Sequence[ReplicaObject], switches: Sequence[SwitchObject]
) -> tuple[list[ReplicaObject], list[SwitchObject]]:
    opened = []
    for rep in replicas:
        sw = _maintain(rep, f, b, switches)
        if sw is not None:
            opened.append(sw)
    # Counted after maintenance, so a standby that just failed is replaced in the same plan.
    created = _desired_count(f, b, replicas)
    return created, opened
