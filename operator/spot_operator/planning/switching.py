"""The SwitchRequest phase machine: an explicit FROM -> TO table and one step function per phase.

Each step looks at what is observed, emits at most the actions of its own phase, and either stays
(waiting for those actions to show) or moves on and lets the next phase look at once. Every action is
keyed, so a restarted operator that replays a phase finds the work it already did.

Pending -> Launching -> Ready -> CuttingOver -> Draining -> Completed, with Failed and Superseded
possible before the cutover starts. Once traffic starts moving a switch always finishes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from spot_operator.api import Capacity, SwitchRequestStatus, TargetKind
from spot_operator.api.switchrequest import SwitchPhase, SwitchTimings
from spot_operator.planning.actions import (
    LaunchInstance,
    MoveTraffic,
    MoveVolumes,
    SetRole,
    TerminateInstance,
)
from spot_operator.planning.backoff import retry_delay
from spot_operator.planning.conditions import set_condition
from spot_operator.planning.facts import COMMITTED_PHASES, IN_FLIGHT_PHASES, Builder, Facts
from spot_operator.planning.model import Instance, Pool, Role, SwitchObject
from spot_operator.planning.pools import (
    cheapest_candidates,
    emergency_candidates,
    in_candidates,
    on_demand_candidates,
)

P = SwitchPhase

TRANSITIONS: dict[SwitchPhase, frozenset[SwitchPhase]] = {
    P.PENDING: frozenset({P.LAUNCHING, P.READY, P.COMPLETED, P.FAILED, P.SUPERSEDED}),
    P.LAUNCHING: frozenset({P.READY, P.FAILED, P.SUPERSEDED}),
    P.READY: frozenset({P.CUTTING_OVER, P.FAILED, P.SUPERSEDED}),
    P.CUTTING_OVER: frozenset({P.DRAINING, P.FAILED}),
    P.DRAINING: frozenset({P.COMPLETED}),
    P.COMPLETED: frozenset(),
    P.FAILED: frozenset(),
    P.SUPERSEDED: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


def transition(
    status: SwitchRequestStatus, to: SwitchPhase, now: datetime, reason: str, message: str, **changes: object
) -> SwitchRequestStatus:
    if to not in TRANSITIONS[status.phase]:
        raise IllegalTransition(f"switch cannot go from {status.phase} to {to}")
    if to in (P.COMPLETED, P.FAILED, P.SUPERSEDED):
        changes.setdefault("completed_at", now)
    done = to in (P.COMPLETED, P.FAILED, P.SUPERSEDED)
    conditions = (
        set_condition(
            status.conditions,
            "Complete",
            to is P.COMPLETED,
            reason,
            message,
            now,
        )
        if done
        else status.conditions
    )
    return status.model_copy(update={"phase": to, "message": message, "conditions": conditions, **changes})


Step = tuple[SwitchRequestStatus, bool]  # (new status, stop here)


def _seconds(a: datetime | None, b: datetime) -> float | None:
    return None if a is None else max((b - a).total_seconds(), 0.0)


def _fail(sw: SwitchObject, st: SwitchRequestStatus, f: Facts, b: Builder, reason: str, message: str) -> Step:
    b.event(f"Switch{reason}", f"{sw.name}: {message}", f"SwitchRequest/{sw.name}", warning=True)
    b.event("SwitchFailed", f"{sw.name}: {message}", warning=True)
    return transition(st, P.FAILED, f.now, reason, message), True


def _terminate_candidate(sw: SwitchObject, f: Facts, b: Builder, why: str) -> None:
    """Terminate what a switch launched for itself (never a Replica's instance or a primary)."""
    inst = f.instance_for(sw.purpose)
    if inst is not None and inst.role is Role.REPLICA:
        b.emit(TerminateInstance(f"terminate/{inst.instance_id}", inst.instance_id, why), (inst.instance_id,))


def target_pool(sw: SwitchObject) -> Pool | None:
    target = sw.spec.target
    if target.pool is None:
        return None
    lifecycle = Capacity.ON_DEMAND if target.kind is TargetKind.ON_DEMAND else Capacity.SPOT
    return Pool.parse(target.pool, lifecycle)


def validate(sw: SwitchObject, f: Facts) -> tuple[SwitchPhase, str, str] | None:
    """Reject what can never succeed; complete at once what is already true."""
    target = sw.spec.target
    primary = f.primary
    pool = target_pool(sw)
    if pool is not None:
        why = in_candidates(f.spec, pool)
        pinned = f.volumes_pin_zone()
        if why is None and pinned is not None and pool.zone != pinned:
            why = f"data volumes keep the primary in {pinned}"
        if why is not None:
            return P.FAILED, "InvalidTarget", f"target pool {target.pool}: {why}"
        if primary is not None and primary.pool == pool and not sw.emergency:
            return P.COMPLETED, "AlreadyThere", f"the primary already runs in {pool}"
    if (
        target.kind is TargetKind.ON_DEMAND
        and pool is None
        and primary is not None
        and not primary.pool.is_spot
        and not sw.emergency
    ):
        return P.COMPLETED, "AlreadyThere", "the primary already runs on on-demand capacity"
    if target.kind is TargetKind.REPLICA:
        rep = f.replicas_by_name.get(target.replica_ref or "")
        if rep is None:
            return P.FAILED, "ReplicaNotFound", f"Replica {target.replica_ref} does not exist"
        inst = f.instance_for(rep.purpose)
        promoted = rep.instance_id or (inst.instance_id if inst is not None else None)
        if primary is not None and promoted == primary.instance_id and not sw.emergency:
            # A restart after the cutover, before this switch's status was written: it is done.
            return P.COMPLETED, "AlreadyThere", f"Replica {rep.name} ({promoted}) is the primary"
        if rep.final or rep.deleting:
            return P.FAILED, "ReplicaNotAvailable", f"Replica {rep.name} is {rep.phase or 'being deleted'}"
    return None


def candidates(sw: SwitchObject, st: SwitchRequestStatus, f: Facts) -> tuple[Pool, ...]:
    spec, market = f.spec, f.market
    pinned = f.volumes_pin_zone()
    current = f.primary.pool if f.primary is not None else None
    leaving = Pool.parse(st.old_pool) if st.old_pool and "/" not in st.old_pool else current
    target = sw.spec.target
    pool = target_pool(sw)
    if sw.emergency and target.kind is not TargetKind.POOL:
        pools: Sequence[Pool] = emergency_candidates(spec, market, leaving, pinned)
    elif target.kind is TargetKind.POOL and pool is not None:
        pools = (pool,)
    elif target.kind is TargetKind.ON_DEMAND:
        pools = (pool,) if pool is not None else on_demand_candidates(spec, market, current, pinned)
    else:
        pools = cheapest_candidates(spec, market, current, pinned)
    return tuple(p for p in pools if p not in market.unavailable)


def _pending(sw: SwitchObject, st: SwitchRequestStatus, f: Facts, b: Builder) -> Step:
    if f.spec.paused and not sw.emergency:
        b.requeue(f.settings.wait_poll_seconds * 6)
        return st.model_copy(update={"message": "waiting: the SpotAgent is paused"}), True
    primary = f.primary
    if primary is None and not sw.emergency:
        b.requeue(f.settings.wait_poll_seconds)
        return st.model_copy(update={"message": "waiting for a primary to move"}), True
    started: dict[str, object] = {"started_at": f.now}
    if primary is not None:
        started |= {"old_instance_id": primary.instance_id, "old_pool": str(primary.pool)}
    elif f.view.last_primary_id:
        lost = f.by_id.get(f.view.last_primary_id)
        started |= {"old_instance_id": f.view.last_primary_id, "old_pool": str(lost.pool) if lost else None}
    if sw.spec.target.kind is TargetKind.REPLICA:
        rep = f.replicas_by_name[sw.spec.target.replica_ref or ""]
        inst = f.instance_for(rep.purpose)
        if (
            inst is not None
            and inst.role is Role.REPLICA
            and f.ready(inst)
            and f.emergency_notice(inst.instance_id) is None
        ):
            b.event(
                "SwitchReady",
                f"{sw.name}: promoting Replica {rep.name} ({inst.instance_id})",
                f"SwitchRequest/{sw.name}",
            )
            return transition(
                st,
                P.READY,
                f.now,
                "ReplicaReady",
                f"promoting {inst.instance_id}",
                new_instance_id=inst.instance_id,
                new_pool=str(inst.pool),
                ready_at=f.now,
                timings=SwitchTimings(launch_seconds=0.0),
                **started,
            ), False
        if (f.now - sw.created_at).total_seconds() > f.settings.replica_ready_timeout_seconds:
            return _fail(sw, st, f, b, "ReplicaNotReady", f"Replica {rep.name} did not become Ready in time")
        b.requeue(f.settings.wait_poll_seconds)
        return st.model_copy(update={"message": f"waiting for Replica {rep.name} to be Ready"}), True
    pools = candidates(sw, st, f)
    if not pools:
        return _fail(sw, st, f, b, "NoCandidatePool", "no eligible pool with capacity to move to")
    b.event("SwitchLaunching", f"{sw.name}: launching in {pools[0]}", f"SwitchRequest/{sw.name}")
    return transition(
        st, P.LAUNCHING, f.now, "Launching", f"launching in {pools[0]}", new_pool=str(pools[0]), **started
    ), False


def _backoff(f: Facts, attempts: int) -> float:
    return retry_delay(f.settings.launch_retry_seconds, attempts)


def _launching(sw: SwitchObject, st: SwitchRequestStatus, f: Facts, b: Builder) -> Step:
    inst = f.instance_for(sw.purpose)
    if inst is None and st.new_instance_id:
        gone = f.by_id.get(st.new_instance_id)
        state = gone.state.value if gone else "gone"
        return _fail(sw, st, f, b, "NewInstanceLost", f"new instance {st.new_instance_id} is {state}")
    if inst is not None:
        st = st.model_copy(
            update={
                "new_instance_id": inst.instance_id,
                "new_pool": str(inst.pool),
                "launched_at": st.launched_at or inst.launched_at,
            }
        )
        if f.emergency_notice(inst.instance_id) is not None:
            _terminate_candidate(sw, f, b, "interrupted before cutover")
            return _fail(
                sw, st, f, b, "NewInstanceInterrupted", f"{inst.instance_id} got an interruption notice"
            )
        if f.ready(inst):
            launch = _seconds(st.started_at, f.now)
            b.event(
                "SwitchReady",
                f"{sw.name}: {inst.instance_id} in {inst.pool} is ready",
                f"SwitchRequest/{sw.name}",
            )
            return transition(
                st,
                P.READY,
                f.now,
                "InstanceReady",
                f"{inst.instance_id} is ready",
                ready_at=f.now,
                timings=SwitchTimings(launch_seconds=launch),
            ), False
        # Measured from the launch, not the switch's start: after a long run of refused launches
        # (throttling for 20 minutes), the instance that finally launched still gets its full time.
        booting = f.now - (st.launched_at or inst.launched_at)
        if booting.total_seconds() > f.settings.launch_timeout_seconds:
            _terminate_candidate(sw, f, b, "not healthy in time")
            return _fail(sw, st, f, b, "LaunchTimeout", f"{inst.instance_id} did not become healthy in time")
        b.requeue(f.settings.wait_poll_seconds)
        return st.model_copy(update={"message": f"waiting for {inst.instance_id} to report healthy"}), True

    failure = f.view.launch_failures.get(sw.launch_key)
    if failure is not None:
        # A requested switch gives up on a definitive failure, or after a few retryable ones in a row
        # (throttling, 5xx, timeouts); an emergency keeps trying.
        retry = failure.retryable and failure.errors < f.settings.max_launch_attempts
        if not sw.emergency and not retry:
            return _fail(sw, st, f, b, failure.reason, f"launch failed: {failure.message}")
        tries = failure.errors if failure.retryable else failure.attempts
        retry_at = failure.at + timedelta(seconds=_backoff(f, tries))
        if f.now < retry_at:
            b.requeue((retry_at - f.now).total_seconds())
            return st.model_copy(update={"message": f"launch failed ({failure.message}); retrying"}), True
    pools = candidates(sw, st, f)
    if not pools:
        if sw.emergency:
            b.requeue(f.settings.launch_retry_seconds)
            return st.model_copy(update={"message": "no pool has capacity; retrying"}), True
        return _fail(sw, st, f, b, "NoCandidatePool", "no eligible pool with capacity to move to")
    b.emit(
        LaunchInstance(
            key=sw.launch_key,
            candidates=pools,
            role=Role.REPLICA,
            purpose=sw.purpose,
            attempt=failure.attempts if failure else 0,
            emergency=sw.emergency,
        )
    )
    return st.model_copy(update={"message": f"launching in {pools[0]}"}), True


def _ready(sw: SwitchObject, st: SwitchRequestStatus, f: Facts, b: Builder) -> Step:
    new = f.by_id.get(st.new_instance_id or "")
    if new is None or not new.live:
        return _fail(sw, st, f, b, "NewInstanceLost", f"new instance {st.new_instance_id} is gone")
    if f.emergency_notice(new.instance_id) is not None:
        _terminate_candidate(sw, f, b, "interrupted before cutover")
        return _fail(sw, st, f, b, "NewInstanceInterrupted", f"{new.instance_id} got an interruption notice")
    if f.spec.paused and not sw.emergency:
        b.requeue(f.settings.wait_poll_seconds * 6)
        return st.model_copy(update={"message": "ready; waiting: the SpotAgent is paused"}), True
    b.event(
        "SwitchCuttingOver", f"{sw.name}: moving the primary to {new.instance_id}", f"SwitchRequest/{sw.name}"
    )
    return transition(st, P.CUTTING_OVER, f.now, "CuttingOver", f"moving traffic to {new.instance_id}"), False


def _is_rightful_primary(inst: Instance, f: Facts) -> bool:
    if inst.role is not Role.PRIMARY:
        return False
    return all(o.epoch < inst.epoch for o in f.view.instances if o.instance_id != inst.instance_id)


def _downtime(st: SwitchRequestStatus, old: Instance | None, f: Facts) -> float:
    """Seconds between the old primary going away and the new one serving (0 when it moved in time)."""
    notice = f.emergency_notice(st.old_instance_id) if st.old_instance_id else None
    if old is None or not old.live:
        gone_at = notice.deadline if notice and notice.deadline else (st.started_at or f.now)
        return max((f.now - gone_at).total_seconds(), 0.0)
    if notice is not None and notice.deadline is not None and f.now > notice.deadline:
        return (f.now - notice.deadline).total_seconds()
    return 0.0


def _cutting_over(sw: SwitchObject, st: SwitchRequestStatus, f: Facts, b: Builder) -> Step:
    new = f.by_id.get(st.new_instance_id or "")
    if new is None or not new.live:
        return _fail(
            sw, st, f, b, "NewInstanceLost", f"new instance {st.new_instance_id} died during cutover"
        )
    old = f.by_id.get(st.old_instance_id) if st.old_instance_id else None
    old_live = old is not None and old.live
    if f.spec.data_volumes and f.view.volumes_attached_to != new.instance_id:
        b.emit(
            MoveVolumes(
                f"volumes/{new.instance_id}", new.instance_id, old.instance_id if old_live and old else ""
            )
        )
        return st.model_copy(update={"message": "moving data volumes"}), True
    acted = False
    epoch = new.epoch
    if not _is_rightful_primary(new, f):
        epoch = f.max_epoch + 1
        acted |= b.emit(
            SetRole(f"role/{new.instance_id}/primary/{epoch}", new.instance_id, Role.PRIMARY, epoch),
            (new.instance_id,),
        )
    if f.has_traffic and f.view.serving != new.instance_id:
        acted |= b.emit(
            MoveTraffic(
                f"traffic/{new.instance_id}/{epoch}", new.instance_id, old.instance_id if old else None
            )
        )
    if acted:
        return st.model_copy(update={"message": f"moving traffic to {new.instance_id}"}), True
    if old_live and old is not None and old.role is Role.PRIMARY:
        b.emit(
            SetRole(f"role/{old.instance_id}/retiring", old.instance_id, Role.RETIRING), (old.instance_id,)
        )
        return st, True
    cutover = _seconds(st.ready_at or st.started_at, f.now)
    timings = (st.timings or SwitchTimings()).model_copy(
        update={"cutover_seconds": cutover, "downtime_seconds": _downtime(st, old, f)}
    )
    b.event("SwitchCutover", f"{sw.name}: {new.instance_id} in {new.pool} is the primary")
    b.event("SwitchCutover", f"{new.instance_id} in {new.pool} is the primary", f"SwitchRequest/{sw.name}")
    return transition(
        st,
        P.DRAINING,
        f.now,
        "Draining",
        f"{new.instance_id} serves; draining the old primary",
        cutover_at=f.now,
        timings=timings,
    ), False


def _draining(sw: SwitchObject, st: SwitchRequestStatus, f: Facts, b: Builder) -> Step:
    old = f.by_id.get(st.old_instance_id) if st.old_instance_id else None
    if old is not None and old.live:
        if not f.spec.termination.auto_terminate:
            message = f"done; {old.instance_id} left running (termination.autoTerminate is false)"
            b.event("SwitchCompleted", f"{sw.name}: {message}", f"SwitchRequest/{sw.name}")
            return transition(st, P.COMPLETED, f.now, "Completed", message), True
        due = (st.cutover_at or f.now) + timedelta(seconds=f.spec.termination.terminate_wait_seconds)
        notice = f.emergency_notice(old.instance_id)
        if notice is not None and notice.deadline is not None:
            due = min(due, notice.deadline)
        if f.now < due:
            b.requeue((due - f.now).total_seconds())
            return st.model_copy(
                update={"message": f"draining {old.instance_id} until {due.isoformat()}"}
            ), True
        b.emit(
            TerminateInstance(
                f"terminate/{old.instance_id}", old.instance_id, f"replaced by {st.new_instance_id}"
            ),
            (old.instance_id,),
        )
        return st, True
    b.event("SwitchCompleted", f"{sw.name}: completed", f"SwitchRequest/{sw.name}")
    return transition(st, P.COMPLETED, f.now, "Completed", f"the primary is {st.new_instance_id}"), True


STEPS: dict[SwitchPhase, Callable[[SwitchObject, SwitchRequestStatus, Facts, Builder], Step]] = {
    P.PENDING: _pending,
    P.LAUNCHING: _launching,
    P.READY: _ready,
    P.CUTTING_OVER: _cutting_over,
    P.DRAINING: _draining,
}


def advance(sw: SwitchObject, f: Facts, b: Builder) -> SwitchRequestStatus:
    """Run a switch's steps until one has to wait for the world."""
    st = sw.status
    for _ in range(len(STEPS) + 1):
        step = STEPS.get(st.phase)
        if step is None:
            break
        st, stop = step(sw, st, f, b)
        if stop:
            break
    return st


def supersede(sw: SwitchObject, by: SwitchObject, f: Facts, b: Builder) -> SwitchRequestStatus:
    message = f"superseded by {by.name} (priority {by.priority} over {sw.priority})"
    _terminate_candidate(sw, f, b, message)
    b.event("SwitchSuperseded", f"{sw.name}: {message}", f"SwitchRequest/{sw.name}")
    return transition(sw.status, P.SUPERSEDED, f.now, "Superseded", message)


def plan_switches(switches: Sequence[SwitchObject], f: Facts, b: Builder) -> list[SwitchObject]:
    """Validate, rank and advance the agent's switches. Returns the ones still active after this plan.

    At most one switch is past Pending at a time. The highest priority (then the oldest) leads; a
    switch that is already moving traffic is never interrupted: higher ones wait for it, lower ones
    are superseded.
    """
    contenders = []
    for sw in switches:
        if sw.final:
            continue
        if sw.status.phase is P.PENDING:
            verdict = validate(sw, f)
            if verdict is not None:
                phase, reason, message = verdict
                b.event(
                    f"Switch{reason}",
                    f"{sw.name}: {message}",
                    f"SwitchRequest/{sw.name}",
                    warning=phase is P.FAILED,
                )
                b.switch_status[sw.name] = transition(sw.status, phase, f.now, reason, message)
                continue
        contenders.append(sw)
    ordered = sorted(contenders, key=lambda s: (-s.priority, s.created_at, s.name))
    committed = [s for s in ordered if s.status.phase in COMMITTED_PHASES]
    leader = committed[0] if committed else (ordered[0] if ordered else None)
    active = []
    for sw in ordered:
        if sw is leader or sw in committed:
            status = advance(sw, f, b)
        elif committed and sw.priority > leader.priority:  # type: ignore[union-attr]
            status = sw.status.model_copy(update={"message": f"waiting for {leader.name} to finish"})  # type: ignore[union-attr]
            b.requeue(f.settings.wait_poll_seconds)
        else:
            assert leader is not None
            status = supersede(sw, leader, f, b)
        if status != sw.status:
            b.switch_status[sw.name] = status
        if status.phase not in (P.COMPLETED, P.FAILED, P.SUPERSEDED):
            active.append(sw)
    return active


def carries_primary(switches: Sequence[SwitchObject], b: Builder) -> bool:
    """Whether some switch is already providing the next primary (so repair must not launch another)."""
    for sw in switches:
        phase = b.switch_status[sw.name].phase if sw.name in b.switch_status else sw.status.phase
        if phase in IN_FLIGHT_PHASES or (sw.emergency and phase is P.PENDING):
            return True
    return False


def committed_switch(switches: Sequence[SwitchObject], b: Builder) -> bool:
    for sw in switches:
        phase = b.switch_status[sw.name].phase if sw.name in b.switch_status else sw.status.phase
        if phase in COMMITTED_PHASES:
            return True
    return False
