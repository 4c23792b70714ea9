"""The SpotAgent's observed state: phase, primary, replicas, conditions."""

from __future__ import annotations

from collections.abc import Sequence

from spot_operator.api import Capacity, Condition, Mode, SpotAgentPhase, SpotAgentStatus, SwitchRequestStatus
from spot_operator.api.replica import REPLICA_FINAL_PHASES
from spot_operator.api.spotagent import LastSwitch, PrimaryStatus, ReplicaSummary, Savings
from spot_operator.api.switchrequest import SwitchPhase
from spot_operator.planning.conditions import set_condition
from spot_operator.planning.facts import COMMITTED_PHASES, IN_FLIGHT_PHASES, Builder, Facts
from spot_operator.planning.model import ReplicaObject, SwitchObject


def _switch_status(sw: SwitchObject, b: Builder) -> SwitchRequestStatus:
    return b.switch_status.get(sw.name, sw.status)


def _primary_status(f: Facts, switches: Sequence[SwitchObject], b: Builder) -> PrimaryStatus | None:
    primary = f.primary
    if primary is None:
        return None
    since = primary.launched_at
    for sw in switches:
        st = _switch_status(sw, b)
        if st.new_instance_id == primary.instance_id and st.cutover_at is not None:
            since = st.cutover_at
    return PrimaryStatus(
        instance_id=primary.instance_id,
        pool=primary.pool.name,
        lifecycle=primary.pool.lifecycle,
        hourly_price=f.market.price(primary.pool),
        since=since,
    )


def _savings(f: Facts, previous: Savings | None) -> Savings | None:
    primary = f.primary
    if primary is None:
        return previous
    price = f.market.price(primary.pool)
    on_demand = f.market.on_demand_prices.get(primary.pool.instance_type)
    if price is None or not on_demand:
        return previous
    hourly = max(on_demand - price, 0.0)
    to_date = previous.to_date_usd if previous else 0.0
    return Savings(
        hourly_usd=round(hourly, 6), to_date_usd=to_date, percent=round(100 * hourly / on_demand, 2)
    )


def _last_switch(
    switches: Sequence[SwitchObject], b: Builder, previous: LastSwitch | None
) -> LastSwitch | None:
    done = [
        (sw, st)
        for sw in switches
        if (st := _switch_status(sw, b)).phase is SwitchPhase.COMPLETED and st.completed_at is not None
    ]
    if not done:
        return previous
    sw, st = max(done, key=lambda pair: pair[1].completed_at)  # type: ignore[arg-type, return-value]
    if (
        previous is not None
        and previous.completed_at
        and st.completed_at
        and previous.completed_at > st.completed_at
    ):
        return previous
    return LastSwitch(
        name=sw.name,
        reason=sw.spec.reason.value,
        from_pool=st.old_pool,
        to_pool=st.new_pool,
        completed_at=st.completed_at,
        downtime_seconds=st.timings.downtime_seconds if st.timings else None,
    )


def agent_status(
    f: Facts,
    b: Builder,
    replicas: Sequence[ReplicaObject],
    switches: Sequence[SwitchObject],
    previous: SpotAgentStatus,
) -> SpotAgentStatus:
    now, gen, spec = f.now, f.view.generation, f.spec
    primary = f.primary
    conds: list[Condition] = list(previous.conditions)

    def cond(type_: str, ok: bool, reason: str, message: str) -> None:
        nonlocal conds
        conds = set_condition(conds, type_, ok, reason, message, now, gen)

    healthy = primary is not None and f.healthy(primary)
    if primary is None:
        cond("PrimaryHealthy", False, "NoPrimary", "no primary instance is running")
    elif not healthy:
        what = primary.state.value if primary.state.value != "running" else "running, no recent heartbeat"
        cond("PrimaryHealthy", False, "PrimaryNotHealthy", f"{primary.instance_id} is {what}")
    else:
        cond("PrimaryHealthy", True, "Healthy", f"{primary.instance_id} in {primary.pool} is healthy")

    active_switches = [(sw, _switch_status(sw, b)) for sw in switches]
    moving = [(sw, st) for sw, st in active_switches if st.phase in IN_FLIGHT_PHASES]
    cutting = [(sw, st) for sw, st in moving if st.phase in COMMITTED_PHASES]
    serving = primary is not None and f.serves(primary)
    if healthy and serving and not [c for c in cutting if c[1].phase is SwitchPhase.CUTTING_OVER]:
        cond("Ready", True, "PrimaryServing", f"{primary.instance_id} serves")  # type: ignore[union-attr]
    elif healthy:
        cond("Ready", False, "TrafficMoving", "traffic is being moved to the primary")
    else:
        cond("Ready", False, "NoHealthyPrimary", "no healthy primary serves")

    live_replicas = [r for r in replicas if b.replica_phase(r) not in REPLICA_FINAL_PHASES and not r.deleting]
    ready_replicas = [r for r in live_replicas if b.replica_phase(r) and b.replica_phase(r).value == "Ready"]  # type: ignore[union-attr]
    if ready_replicas:
        cond("ReplicaReady", True, "StandbyReady", ", ".join(r.name for r in ready_replicas) + " ready")
    elif live_replicas:
        cond(
            "ReplicaReady",
            False,
            "StandbyNotReady",
            ", ".join(r.name for r in live_replicas) + " not ready yet",
        )
    elif spec.mode is Mode.MANUAL_REPLICA:
        cond("ReplicaReady", False, "NoStandby", "manual-replica keeps one standby; it is being created")
    else:
        cond("ReplicaReady", False, "NotRequired", f"mode {spec.mode.value} keeps no standing replica")

    notices = [n for n in f.view.notices if primary is not None and n.instance_id == primary.instance_id]
    if notices:
        n = min(notices, key=lambda n: n.received_at)
        deadline = f", deadline {n.deadline.isoformat()}" if n.deadline else ""
        cond(
            "InterruptionPending",
            True,
            n.kind.value.capitalize(),
            f"{n.kind.value} notice via {n.source}{deadline}",
        )
    else:
        cond("InterruptionPending", False, "NoNotice", "no pending notice for the primary")

    degraded: list[tuple[str, str]] = []
    if primary is not None and spec.capacity is Capacity.SPOT and not primary.pool.is_spot:
        degraded.append(
            ("OnDemandFallback", f"running on on-demand {primary.pool.name} until a spot pool is safe")
        )
    failures = sorted(f.view.launch_failures.items(), key=lambda kv: kv[1].at)
    if failures and (primary is None or moving or not healthy):
        key, fail = failures[-1]
        degraded.append((fail.reason, f"launch {key} failed: {fail.message}"))
    if primary is not None and not healthy:
        degraded.append(("PrimaryNotHealthy", f"{primary.instance_id} is not healthy"))
    if degraded:
        cond("Degraded", True, degraded[0][0], "; ".join(m for _, m in degraded))
    else:
        cond("Degraded", False, "AsExpected", "nothing is degraded")

    if f.view.deleting:
        phase = SpotAgentPhase.DELETING
    elif any(sw.emergency for sw, _ in moving) or any(
        sw.emergency and st.phase is SwitchPhase.PENDING for sw, st in active_switches
    ):
        phase = SpotAgentPhase.FAILING_OVER
    elif moving:
        phase = SpotAgentPhase.SWITCHING
    elif primary is None:
        phase = SpotAgentPhase.PENDING if not f.view.instances else SpotAgentPhase.DEGRADED
    elif not healthy:
        young = (now - primary.launched_at).total_seconds() < f.settings.launch_timeout_seconds
        booting = primary.state.value == "pending" or (primary.last_heartbeat is None and young)
        phase = SpotAgentPhase.LAUNCHING if booting else SpotAgentPhase.DEGRADED
    elif spec.paused:
        phase = SpotAgentPhase.PAUSED
    elif degraded:
        phase = SpotAgentPhase.DEGRADED
    else:
        phase = SpotAgentPhase.READY

    summaries = []
    for rep in live_replicas:
        st = b.replica_status.get(rep.name)
        summaries.append(
            ReplicaSummary(
                name=rep.name,
                instance_id=st.instance_id if st else rep.instance_id,
                pool=st.pool if st else rep.pool,
                phase=(b.replica_phase(rep) or "Launching").__str__(),
            )
        )

    return SpotAgentStatus(
        phase=phase,
        primary=_primary_status(f, switches, b),
        replicas=summaries,
        conditions=conds,
        savings=_savings(f, previous.savings),
        last_switch=_last_switch(switches, b, previous.last_switch),
        observed_generation=gen,
    )
