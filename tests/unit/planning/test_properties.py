"""Property tests: any sequence of events, then quiet, converges to the invariants.

A whole operator world runs in memory (the real planner, actuator and reconciler over the in-memory
EC2 and traffic). Hypothesis draws a workload configuration and a sequence of events: interruption
and rebalance notices (for the primary, a replica or an unknown instance, sometimes twice), AWS
reclaiming instances with or without a notice, pools losing capacity, people asking for switches,
operator crashes part-way through a reconcile, and operator restarts that lose all memory. Then the
world is left alone, and must settle.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from spot_operator.api import ReplicaPhase, ReplicaReason, SwitchReason, SwitchTarget, TargetKind
from spot_operator.inmemory import InMemoryEc2
from spot_operator.planning import ForgetNotice, LaunchInstance, NoticeKind, Pool, Role
from spot_operator.runtime.reconciler import ReconcileResult
from spot_operator.simulation.world import World, with_prices

from .builders import ON_DEMAND, PRICES, spec

POOLS = sorted(PRICES)
AGENT = "web"


class GuardedEc2(InMemoryEc2):
    """Refuses to terminate the instance that serves traffic: the one thing that must never happen."""

    traffic: Any = None
    violations: list[str]

    async def terminate(self, region: str, instance_ids: Any) -> None:
        serving = set(self.traffic.pointing.values()) if self.traffic is not None else set()
        for instance_id in instance_ids:
            if instance_id in serving:
                self.violations.append(f"terminated {instance_id} while it served traffic")
        await super().terminate(region, instance_ids)


def make_world(config: dict[str, Any]) -> World:
    world = with_prices(World(boot_seconds=60, agent_start_seconds=10), PRICES)
    world.on_demand.update(ON_DEMAND)
    guarded = GuardedEc2(world.clock, boot_seconds=60)
    guarded.traffic = world.traffic
    guarded.violations = []
    world.ec2 = guarded
    world.ports.ec2 = guarded
    overrides: dict[str, Any] = {
        "mode": config["mode"],
        "policy": {"onDemandFallback": config["fallback"]},
        "termination": {"autoTerminate": config["auto_terminate"], "terminateWaitSeconds": config["wait"]},
    }
    if not config["traffic"]:
        overrides["traffic"] = {"elasticIpAllocationId": None}
    world.add_agent(AGENT, spec(**overrides))
    return world


configs = st.fixed_dictionaries(
    {
        "mode": st.sampled_from(["auto-switch", "manual-replica", "off"]),
        "fallback": st.booleans(),
        "auto_terminate": st.booleans(),
        "wait": st.sampled_from([0, 30, 300]),
        "traffic": st.booleans(),
    }
)

events = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.sampled_from([1, 5, 30, 120, 600])),
        st.tuples(
            st.just("notice"),
            st.sampled_from(["interruption", "rebalance"]),
            st.sampled_from(["primary", "replica", "unknown"]),
            st.booleans(),
        ),
        st.tuples(st.just("reclaim"), st.sampled_from(["primary", "replica"])),
        st.tuples(st.just("capacity"), st.sampled_from(POOLS), st.booleans()),
        st.tuples(
            st.just("switch"),
            st.sampled_from(["pool", "on-demand", "cheapest", "replica"]),
            st.sampled_from(POOLS),
            st.sampled_from(["manual", "decision"]),
        ),
        st.tuples(st.just("crash"), st.integers(min_value=1, max_value=3)),
        st.tuples(st.just("restart")),
    ),
    max_size=14,
)


def _pick(world: World, which: str) -> str | None:
    live = world.live(AGENT)
    if which == "primary":
        found = [i for i in live if i.role is Role.PRIMARY]
    elif which == "replica":
        found = [i for i in live if i.role is Role.REPLICA]
    else:
        return "i-0000000000000dead"
    return sorted(found, key=lambda i: i.instance_id)[0].instance_id if found else None


class Ledger:
    """Every action the reconciler carried out, to check idempotency across the whole run."""

    def __init__(self) -> None:
        self.done: Counter[tuple[str, str]] = Counter()

    def record(self, results: dict[str, ReconcileResult]) -> None:
        for result in results.values():
            for r in result.results:
                if not r.ok or isinstance(r.action, ForgetNotice):
                    continue
                key = r.action.key
                if isinstance(r.action, LaunchInstance):
                    key = f"{key}#{r.action.attempt}"
                self.done[(type(r.action).__name__, key)] += 1

    def repeated(self) -> list[tuple[str, str]]:
        return [k for k, n in self.done.items() if n > 1]


async def apply(world: World, ledger: Ledger, event: tuple[Any, ...], n: int) -> None:
    kind = event[0]
    if kind == "tick":
        ledger.record(await world.tick(event[1]))
    elif kind == "notice":
        target = _pick(world, event[2])
        if target is not None:
            for source in ("agent", "sqs") if event[3] else ("agent",):
                world.notice(target, NoticeKind(event[1]), source=source)
                if target.startswith("i-0000000000000dead"):
                    state = world.agent(AGENT)
                    from spot_operator.planning import Notice

                    state.add_notice(Notice(target, NoticeKind(event[1]), world.clock.now(), None, source))
        ledger.record(await world.tick(1))
    elif kind == "reclaim":
        target = _pick(world, event[1])
        if target is not None:
            world.reclaim(target)
        ledger.record(await world.tick(1))
    elif kind == "capacity":
        world.ec2.set_capacity(Pool.parse(event[1]), 1_000_000 if event[2] else 0)
    elif kind == "switch":
        _, target_kind, pool, reason = event
        state = world.agent(AGENT)
        if target_kind == "replica":
            ready = [r for r in state.replicas.values() if r.phase is ReplicaPhase.READY]
            if not ready:
                return
            target = SwitchTarget(kind=TargetKind.REPLICA, replica_ref=ready[0].name)
        elif target_kind == "pool":
            target = SwitchTarget(kind=TargetKind.POOL, pool=pool)
        else:
            target = SwitchTarget(kind=TargetKind(target_kind))
        world.request_switch(AGENT, f"sw-{n}", target, SwitchReason(reason))
        ledger.record(await world.tick(1))
    elif kind == "crash":
        ledger.record(await world.tick(1, max_rounds=event[1]))
        world.restart()
    elif kind == "restart":
        world.restart()


def settled(world: World, config: dict[str, Any]) -> bool:
    state = world.agent(AGENT)
    primaries = world.primaries(AGENT)
    if len(primaries) != 1:
        return False
    primary = primaries[0]
    if config["traffic"] and world.serving(AGENT) != primary.instance_id:
        return False
    if state.status.phase.value not in ("Ready", "Degraded"):
        return False
    # A rebalance recommendation for the living primary stays pending (and shown) until it is replaced.
    if any(
        n.kind is not NoticeKind.REBALANCE or n.instance_id != primary.instance_id
        for n in state.notices.values()
    ):
        return False
    if any(not sw.final for sw in state.switches.values()):
        return False
    standbys = [
        r for r in state.replicas.values() if r.managed and r.reason is ReplicaReason.MANUAL and not r.final
    ]
    if config["mode"] == "manual-replica":
        return len(standbys) == 1 and standbys[0].phase is ReplicaPhase.READY
    return not standbys and not [r for r in state.replicas.values() if r.managed and not r.final]


async def scenario(config: dict[str, Any], sequence: list[tuple[Any, ...]]) -> tuple[World, Ledger, bool]:
    world = make_world(config)
    ledger = Ledger()
    await world.run_until(lambda: settled(world, config), step_seconds=30, max_seconds=3600)
    for n, event in enumerate(sequence):
        await apply(world, ledger, event, n)
    for pool in POOLS:  # capacity comes back; then the world is left alone
        world.ec2.set_capacity(Pool.parse(pool), 1_000_000)
    ok = True
    try:
        await world.run_until(lambda: settled(world, config), step_seconds=30, max_seconds=7200)
    except TimeoutError:
        ok = False
    ledger.record(await world.tick(30))
    return world, ledger, ok


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, sequence=events)
def test_any_history_settles_to_one_serving_primary_and_the_modes_replicas(
    config: dict[str, Any], sequence: list[tuple[Any, ...]]
) -> None:
    note(f"config={config} sequence={sequence}")
    loop = asyncio.new_event_loop()  # a private loop: asyncio.run would replace the thread's current one
    try:
        world, ledger, ok = loop.run_until_complete(scenario(config, sequence))
    finally:
        loop.close()
    state = world.agent(AGENT)
    primaries = world.primaries(AGENT)
    assert ok, (
        f"did not settle: primaries={[p.instance_id for p in primaries]} serving={world.serving(AGENT)} "
        f"phase={state.status.phase} switches={[(s.name, s.status.phase) for s in state.switches.values()]} "
        f"replicas={[(r.name, r.phase) for r in state.replicas.values()]} notices={list(state.notices)}"
    )
    assert len(primaries) == 1
    assert world.ec2.violations == []  # type: ignore[attr-defined]
    # A launch key never produced two instances (ClientToken idempotency, even across crashes).
    per_key = Counter((rec.owner, rec.instance.launch_key) for rec in world.ec2.records.values())
    assert [k for k, n in per_key.items() if n > 1] == []
    # No step was carried out twice.
    assert ledger.repeated() == []
    # Nothing we launched is left running without a reason.
    live = world.live(AGENT)
    claimed = {r.instance_id for r in state.replica_status.values() if r.phase is ReplicaPhase.READY}
    for inst in live:
        if inst.role is Role.RETIRING:
            assert not config["auto_terminate"], f"{inst.instance_id} retired but still running"
        elif inst.role is Role.REPLICA:
            assert inst.instance_id in claimed, f"{inst.instance_id} is a replica nobody claims"
