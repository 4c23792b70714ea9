"""The reliability suite: crash the operator at every step, make AWS fail, send notices twice and late.

Each run drives one flow of one SpotAgent through :class:`~spot_operator.simulation.world.World` (the
real planner, actuator and reconciler over the in-memory EC2, traffic and Kubernetes objects, on a
simulated clock) with the ports wrapped by :mod:`spot_operator.simulation.faults`. When the world has
settled, it checks the invariants:

- exactly one primary, and the Elastic IP (and target groups) point at it;
- nothing leaked: every live instance with our owner tag is the primary, a Replica's instance, or a
  retired primary left running on purpose (``autoTerminate: false``);
- no launch step launched twice (one instance per step key: the ClientToken), and no more instances
  than the same flow launches undisturbed;
- every SwitchRequest finished: Completed, or Failed / Superseded with a ``Complete`` condition that
  gives the reason; no notice is left unhandled;
- the flow reached its goal (the switch completed, the primary moved off the interrupted instance).

While it runs, it measures the longest time (simulated seconds, at the 5 s tick) without exactly one
running, serving primary.

    python -m spot_operator.simulation.reliability            # the fast subset, printed
    python -m spot_operator.simulation.reliability --full --write docs/RELIABILITY.md
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from spot_operator.actuators import Ports
from spot_operator.api import (
    Capacity,
    ReplicaPhase,
    ReplicaReason,
    SpotAgentSpec,
    SwitchReason,
    SwitchTarget,
    TargetKind,
)
from spot_operator.api.switchrequest import SwitchPhase
from spot_operator.errors import Throttled, Transient
from spot_operator.planning import DEFAULT_SETTINGS, NoticeKind, Pool, Role
from spot_operator.runtime.reconciler import Reconciler
from spot_operator.simulation.faults import (
    Crash,
    Fault,
    FaultyEc2,
    FaultyObjects,
    FaultyTraffic,
    Fuse,
    Injector,
    When,
)
from spot_operator.simulation.world import World, with_prices

AGENT = "web"
EIP = "eipalloc-0123456789abcdef0"
TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
PRICES = {
    "m5a.large.us-east-1a": 0.030,
    "m5.large.us-east-1b": 0.035,
    "m5.large.us-east-1a": 0.040,
    "m5a.large.us-east-1b": 0.045,
}
ON_DEMAND = {"m5.large": 0.096, "m5a.large": 0.086}
STEP_SECONDS = 5.0
NOTICE_LEAD_SECONDS = 120.0
MAX_SECONDS = 3600.0

CrashMode = Literal["process", "task"]


# ------------------------------------------------------------------------------------ the workload
@dataclass(frozen=True)
class Config:
    mode: str = "auto-switch"
    fallback: bool = False
    auto_terminate: bool = True
    wait: int = 30
    target_groups: bool = False
    rebalance_action: str = "replace"

    def spec(self) -> SpotAgentSpec:
        traffic: dict[str, Any] = {"elasticIpAllocationId": EIP}
        if self.target_groups:
            traffic["targetGroupArns"] = [TARGET_GROUP]
        return SpotAgentSpec.model_validate(
            {
                "region": "us-east-1",
                "launchTemplate": {"name": "web"},
                "instanceTypes": ["m5.large", "m5a.large"],
                "zones": ["us-east-1a", "us-east-1b"],
                "mode": self.mode,
                "traffic": traffic,
                "policy": {"onDemandFallback": self.fallback, "rebalanceAction": self.rebalance_action},
                "termination": {"autoTerminate": self.auto_terminate, "terminateWaitSeconds": self.wait},
            }
        )


class Harness:
    """One SpotAgent in a World whose ports go through an :class:`Injector`."""

    def __init__(self, config: Config, crash_mode: CrashMode = "process") -> None:
        self.config = config
        self.crash_mode = crash_mode
        self.world = with_prices(World(boot_seconds=60, agent_start_seconds=10), PRICES)
        self.world.on_demand.update(ON_DEMAND)
        self.injector = Injector(self.world.clock)
        self.traffic = FaultyTraffic(self.world.traffic, self.injector)
        world = self.world
        world.ports = Ports(
            FaultyEc2(world.ec2, self.injector),
            self.traffic,
            FaultyObjects(world.objects, self.injector),
            world.clock.now,
            world.unavailable,
        )
        world.reconciler = Reconciler(world.ports, world.market_for, world.settings)
        world.add_agent(AGENT, config.spec())
        self.crashes = 0
        # Fuses for the processes after a crash (one entry per further crash); then they live.
        self.next_fuses: list[int] = []
        self.reclaim_at: dict[str, datetime] = {}
        self.launched_before = 0
        self.worst_gap = 0.0
        self._gap_since: datetime | None = None
        self.on_tick: list[Callable[[Harness], Awaitable[None]]] = []

    # -- driving --------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self.world.clock.now()

    async def tick(self, seconds: float = STEP_SECONDS) -> None:
        if seconds:
            self.world.clock.advance(seconds)
        for instance_id, at in list(self.reclaim_at.items()):
            if self.now >= at:  # the end of a spot notice: AWS takes the instance
                self.world.reclaim(instance_id)
                del self.reclaim_at[instance_id]
        for hook in list(self.on_tick):
            await hook(self)
        try:
            await self.world.tick()
        except Crash:
            self.crashes += 1
            self.injector.fuse = Fuse(self.next_fuses.pop(0) if self.next_fuses else None)
            if self.crash_mode == "process":
                self.world.restart()
        self._measure()

    def _measure(self) -> None:
        if self._serving_primary() is not None:
            if self._gap_since is not None:
                self.worst_gap = max(self.worst_gap, (self.now - self._gap_since).total_seconds())
                self._gap_since = None
        elif self._gap_since is None:
            self._gap_since = self.now

    def close_gap(self) -> None:
        if self._gap_since is not None:
            self.worst_gap = max(self.worst_gap, (self.now - self._gap_since).total_seconds())

    def _serving_primary(self) -> str | None:
        primaries = self.world.primaries(AGENT)
        if len(primaries) != 1 or primaries[0].state.value != "running":
            return None
        instance_id = primaries[0].instance_id
        return instance_id if self.world.serving(AGENT) == instance_id else None

    async def settle(self, until: Callable[[], bool], max_seconds: float = MAX_SECONDS) -> bool:
        start = self.now
        await self.tick(0)
        while not until():
            if (self.now - start).total_seconds() > max_seconds:
                return False
            await self.tick()
        return True

    async def start(self) -> None:
        """Bring the agent up undisturbed: a primary, serving, and the mode's standby."""
        if not await self.settle(lambda: not self.problems(), max_seconds=1800):
            raise RuntimeError(f"the workload never came up: {self.problems()}")
        self.launched_before = len(self.world.ec2.records)
        self.injector.fuse = Fuse()
        self.worst_gap, self._gap_since = 0.0, None

    def notice(self, instance_id: str, kind: NoticeKind, source: str = "agent") -> bool:
        accepted = self.world.notice(instance_id, kind, NOTICE_LEAD_SECONDS, source)
        if kind is NoticeKind.INTERRUPTION and instance_id not in self.reclaim_at:
            rec = self.world.ec2.records.get(instance_id)
            if rec is not None and rec.instance.live:
                self.reclaim_at[instance_id] = self.now + timedelta(seconds=NOTICE_LEAD_SECONDS)
        return accepted

    # -- what must hold ---------------------------------------------------------------------------
    @property
    def primary(self) -> str | None:
        primaries = self.world.primaries(AGENT)
        return primaries[0].instance_id if len(primaries) == 1 else None

    @property
    def launched(self) -> int:
        return len(self.world.ec2.records) - self.launched_before

    def problems(self) -> list[str]:
        """Every invariant that does not hold now (empty: settled)."""
        world, state = self.world, self.world.agent(AGENT)
        out: list[str] = []
        primaries = world.primaries(AGENT)
        if len(primaries) != 1:
            out.append(f"{len(primaries)} primaries: {[p.instance_id for p in primaries]}")
            primary = None
        else:
            primary = primaries[0].instance_id
            if world.serving(AGENT) != primary:
                out.append(f"the Elastic IP points at {world.serving(AGENT)}, the primary is {primary}")
            groups = self.traffic.groups.get((TARGET_GROUP,), primary)
            if self.config.target_groups and groups != primary:
                out.append(f"the target groups point at {groups}, the primary is {primary}")
            if state.status.primary is None or state.status.primary.instance_id != primary:
                out.append(f"status.primary is not {primary}")
        claimed = {
            rs.instance_id
            for name, rs in state.replica_status.items()
            if rs.phase not in (ReplicaPhase.PROMOTED, ReplicaPhase.TERMINATED)
            and name in state.replicas
            and not state.replicas[name].final
        }
        for rec in world.ec2.records.values():
            inst = world.ec2._current(rec)
            if not inst.live or inst.instance_id == primary:
                continue
            if rec.owner != state.ref.uid:
                out.append(f"leaked {inst.instance_id}: owner {rec.owner}")
            elif not (
                (inst.role is Role.RETIRING and not self.config.auto_terminate)
                or (inst.role is Role.REPLICA and inst.instance_id in claimed)
            ):
                out.append(f"leaked {inst.instance_id} ({inst.role.value}, {inst.state.value})")
        per_key = Counter((r.owner, r.instance.launch_key) for r in world.ec2.records.values())
        out += [f"step {key} launched {n} instances" for (_, key), n in per_key.items() if n > 1]
        for sw in state.switches.values():
            if not sw.final:
                out.append(f"switch {sw.name} still {sw.status.phase.value}")
            elif sw.status.phase is not SwitchPhase.COMPLETED:
                done = [c for c in sw.status.conditions if c.type == "Complete"]
                if not done or not done[0].reason or not sw.status.message:
                    out.append(f"switch {sw.name} is {sw.status.phase.value} without a reason")
        for notice in state.notices.values():
            if not (notice.kind is NoticeKind.REBALANCE and notice.instance_id == primary):
                out.append(f"{notice.kind.value} notice for {notice.instance_id} not handled")
        standbys = [
            r
            for r in state.replicas.values()
            if r.managed and r.reason is ReplicaReason.MANUAL and not r.final
        ]
        if self.config.mode == "manual-replica":
            if len(standbys) != 1 or standbys[0].phase is not ReplicaPhase.READY:
                out.append(f"standbys: {[(r.name, r.phase) for r in standbys]}, want one Ready")
        elif [r for r in state.replicas.values() if r.managed and not r.final]:
            out.append("a replica is left over")
        if state.status.phase.value not in ("Ready", "Degraded"):
            out.append(f"phase {state.status.phase.value}")
        return out

    def switch(self, name: str) -> SwitchPhase | None:
        sw = self.world.agent(AGENT).switches.get(name)
        return sw.status.phase if sw is not None else None


# ------------------------------------------------------------------------------------------- flows
Goal = Callable[[Harness], list[str]]


@dataclass(frozen=True)
class Flow:
    """One thing the operator does: how to start it and what it must have achieved at the end."""

    name: str
    config: Config
    trigger: Callable[[Harness], Awaitable[Goal]]


def _switch_done(name: str, phases: Sequence[SwitchPhase] = (SwitchPhase.COMPLETED,)) -> Goal:
    def goal(h: Harness) -> list[str]:
        phase = h.switch(name)
        return [] if phase in phases else [f"{name} is {phase}, want {'/'.join(p.value for p in phases)}"]

    return goal


def _moved_off(old: str, capacity: Capacity | None = None) -> Goal:
    def goal(h: Harness) -> list[str]:
        primary = h.primary
        out = [f"the primary is still {old}"] if primary == old else []
        if capacity is not None and primary is not None:
            pool = h.world.ec2.records[primary].instance.pool
            if pool.lifecycle is not capacity:
                out.append(f"the primary runs on {pool.lifecycle.value}, want {capacity.value}")
        return out

    return goal


def _both(*goals: Goal) -> Goal:
    return lambda h: [p for g in goals for p in g(h)]


async def _pool_switch(h: Harness) -> Goal:
    h.world.request_switch(AGENT, "to-pool", SwitchTarget(kind=TargetKind.POOL, pool="m5.large.us-east-1b"))
    return _switch_done("to-pool")


async def _on_demand_switch(h: Harness) -> Goal:
    h.world.request_switch(AGENT, "to-od", SwitchTarget(kind=TargetKind.ON_DEMAND))
    return _both(_switch_done("to-od"), _moved_off(h.primary or "", Capacity.ON_DEMAND))


async def _promotion(h: Harness) -> Goal:
    state = h.world.agent(AGENT)
    standby = next(r for r in state.replicas.values() if r.phase is ReplicaPhase.READY)
    target = SwitchTarget(kind=TargetKind.REPLICA, replica_ref=standby.name)
    h.world.request_switch(AGENT, "promote", target)
    return _both(_switch_done("promote"), _moved_off(h.primary or ""))


async def _interruption(h: Harness) -> Goal:
    old = h.primary or ""
    h.notice(old, NoticeKind.INTERRUPTION)
    return _moved_off(old)


async def _lost_primary(h: Harness) -> Goal:
    old = h.primary or ""
    h.world.reclaim(old)
    return _moved_off(old)


async def _rebalance(h: Harness) -> Goal:
    old = h.primary or ""
    h.notice(old, NoticeKind.REBALANCE)
    return _moved_off(old)


async def _two_switches(h: Harness) -> Goal:
    h.world.request_switch(
        AGENT, "low", SwitchTarget(kind=TargetKind.POOL, pool="m5a.large.us-east-1b"), SwitchReason.DECISION
    )
    h.world.request_switch(AGENT, "high", SwitchTarget(kind=TargetKind.POOL, pool="m5.large.us-east-1b"))
    return _both(_switch_done("high"), _switch_done("low", (SwitchPhase.SUPERSEDED,)))


REPLICA = Config(mode="manual-replica")
FLOWS: tuple[Flow, ...] = (
    Flow("pool switch", Config(), _pool_switch),
    Flow("on-demand switch", Config(), _on_demand_switch),
    Flow("replica promotion", REPLICA, _promotion),
    Flow("failover with replica", REPLICA, _interruption),
    Flow("failover without replica (spot)", Config(), _interruption),
    Flow("failover without replica (on-demand)", Config(fallback=True), _interruption),
    Flow("primary lost without notice", Config(), _lost_primary),
    Flow("rebalance recommendation", Config(), _rebalance),
    Flow("two SwitchRequests at once", Config(), _two_switches),
)
FLOW = {f.name: f for f in FLOWS}


# -------------------------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class RunResult:
    problems: tuple[str, ...]
    lost: int
    gap_seconds: float
    calls: int
    launched: int
    crashes: int

    @property
    def ok(self) -> bool:
        return not self.problems


Setup = Callable[[Harness], Awaitable[None]]


async def _nothing(h: Harness) -> None:
    return None


async def run_flow(
    flow: Flow,
    crash_after: int | None = None,
    crash_mode: CrashMode = "process",
    setup: Setup = _nothing,
    config: Config | None = None,
    max_launches: int | None = None,
    second_crash_after: int | None = None,
) -> RunResult:
    """Drive ``flow`` once: crash at the (crash_after+1)th side effect after its trigger (None: never)."""
    h = Harness(config or flow.config, crash_mode)
    await h.start()
    await setup(h)
    h.injector.fuse = Fuse(crash_after)
    h.next_fuses = [second_crash_after] if second_crash_after is not None else []
    goal = await flow.trigger(h)
    settled = await h.settle(lambda: not h.problems() and not goal(h))
    calls = h.injector.fuse.calls
    if settled:  # quiet for a while: nothing flaps, nothing new is launched
        for _ in range(int(300 / STEP_SECONDS)):
            await h.tick()
    h.close_gap()
    problems = h.problems() + goal(h)
    if not settled:
        problems.insert(0, f"did not settle within {MAX_SECONDS:.0f} s")
    if max_launches is not None and h.launched > max_launches:
        problems.append(f"launched {h.launched} instances, the undisturbed run {max_launches}")
    lost = sum(
        1 for p in problems if p.startswith(("leaked", "switch", "step", "a replica")) or "notice" in p
    )
    return RunResult(tuple(problems), lost, h.worst_gap, calls, h.launched, h.crashes)


def run(coro: Awaitable[RunResult]) -> RunResult:
    loop = asyncio.new_event_loop()  # a private loop: asyncio.run would replace the thread's current one
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


# --------------------------------------------------------------------------------------- scenarios
@dataclass
class ScenarioResult:
    group: str
    name: str
    runs: int = 0
    failures: int = 0
    lost: int = 0
    worst_gap: float = 0.0
    examples: list[str] = field(default_factory=list)

    def add(self, label: str, result: RunResult) -> None:
        self.runs += 1
        self.lost += result.lost
        self.worst_gap = max(self.worst_gap, result.gap_seconds)
        if not result.ok:
            self.failures += 1
            if len(self.examples) < 3:
                self.examples.append(f"{label}: {'; '.join(result.problems)}")


Case = tuple[str, Callable[[], Awaitable[RunResult]]]


@dataclass(frozen=True)
class Scenario:
    group: str
    name: str
    cases: Callable[[bool], Iterator[Case]]  # full -> (label, run)

    def run(self, full: bool) -> ScenarioResult:
        result = ScenarioResult(self.group, self.name)
        for label, case in self.cases(full):
            result.add(label, run(case()))
        return result


def baseline(flow: Flow, config: Config | None = None, setup: Setup = _nothing) -> RunResult:
    result = run(run_flow(flow, setup=setup, config=config))
    if not result.ok:
        raise AssertionError(f"{flow.name} fails undisturbed: {result.problems}")
    return result


def _crash_cases(flow: Flow, modes: Sequence[CrashMode], full: bool) -> Iterator[Case]:
    clean = baseline(flow)
    steps = range(clean.calls) if full else range(0, clean.calls, max(clean.calls // 4, 1))
    for mode in modes:
        for k in steps:
            yield (
                f"{mode} crash before call {k + 1}",
                lambda k=k, mode=mode: run_flow(flow, k, mode, max_launches=clean.launched),  # type: ignore[misc]
            )
    if full:  # a second crash while recovering from the first
        for k in range(0, clean.calls, 3):
            for j in range(0, clean.calls, 3):
                yield (
                    f"process crash before call {k + 1}, again after {j} calls",
                    lambda k=k, j=j: run_flow(  # type: ignore[misc]
                        flow, k, "process", max_launches=clean.launched, second_crash_after=j
                    ),
                )


def crash_scenario(flow: Flow) -> Scenario:
    return Scenario(
        "Crash at every step",
        flow.name,
        lambda full: _crash_cases(flow, ("process", "task") if full else ("process",), full),
    )


def _fault_setup(*faults: Fault) -> Setup:
    async def setup(h: Harness) -> None:
        h.injector.faults = [replace(f) for f in faults]

    return setup


def _capacity(*pools: str) -> Setup:
    async def setup(h: Harness) -> None:
        for pool in pools:
            h.world.ec2.set_capacity(Pool.parse(pool), 0)

    return setup


FAULT_FLOWS = (
    "pool switch",
    "replica promotion",
    "failover with replica",
    "failover without replica (spot)",
    "failover without replica (on-demand)",
    "rebalance recommendation",
)
OPERATIONS = ("launch", "set_role", "move_traffic", "terminate", "*")


def _burst_cases(
    error: Callable[[], Exception], when: When = When.BEFORE, config: Config | None = None
) -> Callable[[bool], Iterator[Case]]:
    def cases(full: bool) -> Iterator[Case]:
        flows = FAULT_FLOWS if full else ("pool switch", "failover without replica (spot)")
        bursts = (1, 2, 3, 5, 8, 13) if full else (1, 3)
        for name in flows:
            flow = FLOW[name]
            clean = baseline(flow, config)
            for op in OPERATIONS if full else ("launch", "move_traffic", "*"):
                for n in bursts:
                    setup = _fault_setup(Fault(op, error, times=n, when=when))
                    target = flow
                    if name == "pool switch" and op in ("launch", "*") and n >= MAX_ATTEMPTS:
                        # A requested switch gives up after this many failed launches in a row.
                        target = replace(flow, trigger=_gives_up)
                    yield (
                        f"{name}: {n} x {op}",
                        lambda flow=target, setup=setup, clean=clean: run_flow(  # type: ignore[misc]
                            flow, setup=setup, config=config, max_launches=clean.launched
                        ),
                    )

    return cases


MAX_ATTEMPTS = DEFAULT_SETTINGS.max_launch_attempts


async def _gives_up(h: Harness) -> Goal:
    await _pool_switch(h)
    return _switch_done("to-pool", (SwitchPhase.COMPLETED, SwitchPhase.FAILED))


def _slow_cases(full: bool) -> Iterator[Case]:
    flows = FAULT_FLOWS if full else ("failover without replica (spot)",)
    for name in flows:
        for latency in (0.5, 2.0, 5.0, 10.0) if full else (2.0,):
            setup = _fault_setup(Fault("*", None, times=10**9, latency_seconds=latency))
            yield (
                f"{name}: every call {latency} s",
                lambda flow=FLOW[name], setup=setup: run_flow(flow, setup=setup),  # type: ignore[misc]
            )


def _one_pool_cases(full: bool) -> Iterator[Case]:
    for name in (
        "failover without replica (spot)",
        "primary lost without notice",
        "rebalance recommendation",
    ):
        for pool in PRICES:
            yield (
                f"{name}: {pool} has no capacity",
                lambda flow=FLOW[name], pool=pool: run_flow(flow, setup=_capacity(pool)),  # type: ignore[misc]
            )
    yield (
        "pool switch into a pool without capacity: fails cleanly",
        lambda: run_flow(
            Flow(
                "switch to empty pool",
                Config(),
                lambda h: _expect_failed(h),
            ),
            setup=_capacity("m5.large.us-east-1b"),
        ),
    )


async def _expect_failed(h: Harness) -> Goal:
    old = h.primary
    await _pool_switch(h)

    def goal(h: Harness) -> list[str]:
        out = _switch_done("to-pool", (SwitchPhase.FAILED,))(h)
        return out + ([] if h.primary == old else [f"the primary moved from {old} to {h.primary}"])

    return goal


def _all_spot_cases(full: bool) -> Iterator[Case]:
    for name in ("failover without replica (spot)", "primary lost without notice"):
        flow = FLOW[name]
        for fallback in (False, True):
            config = replace(flow.config, fallback=fallback)
            yield (
                f"{name}, onDemandFallback={fallback}",
                lambda flow=flow, config=config: run_flow(  # type: ignore[misc]
                    replace(flow, trigger=_on_demand_goal(flow.trigger)),
                    setup=_capacity(*PRICES),
                    config=config,
                ),
            )


def _on_demand_goal(trigger: Callable[[Harness], Awaitable[Goal]]) -> Callable[[Harness], Awaitable[Goal]]:
    async def wrapped(h: Harness) -> Goal:
        old = h.primary or ""
        goal = await trigger(h)
        return _both(goal, _moved_off(old, Capacity.ON_DEMAND))

    return wrapped


# -- duplicates and disorder -------------------------------------------------------------------------
def _later(delay: float, action: Callable[[Harness], None]) -> Setup:
    """Do ``action`` ``delay`` simulated seconds after the trigger (from the tick hook)."""

    async def setup(h: Harness) -> None:
        due = h.now + timedelta(seconds=delay)

        async def hook(h: Harness) -> None:
            if h.now >= due:
                h.on_tick.remove(hook)
                action(h)

        h.on_tick.append(hook)

    return setup


def _duplicate_cases(full: bool) -> Iterator[Case]:
    delays = (0, 1, 5, 30, 60, 90, 120, 180, 300, 600) if full else (0, 60, 300)
    for name in (
        "failover with replica",
        "failover without replica (spot)",
        "failover without replica (on-demand)",
    ):
        flow = FLOW[name]
        clean = baseline(flow)
        for delay in delays:

            async def trigger(h: Harness, delay: float = delay, inner: Flow = flow) -> Goal:
                old = h.primary or ""
                await _later(delay, lambda h: void(h.notice(old, NoticeKind.INTERRUPTION, "sqs")))(h)
                return await inner.trigger(h)

            yield (
                f"{name}: SQS copy {delay} s after the agent's",
                lambda flow=flow, trigger=trigger, clean=clean: run_flow(  # type: ignore[misc]
                    replace(flow, trigger=trigger), max_launches=clean.launched
                ),
            )


def void(_: object) -> None:
    return None


def _disorder_cases(full: bool) -> Iterator[Case]:
    delays = (0, 5, 30, 60, 110, 130, 300) if full else (0, 60, 130)
    flow = FLOW["failover without replica (spot)"]
    clean = baseline(flow)
    for delay in delays:

        async def late_rebalance(h: Harness, delay: float = delay) -> Goal:
            old = h.primary or ""
            await _later(delay, lambda h: void(h.notice(old, NoticeKind.REBALANCE)))(h)
            return await _interruption(h)

        yield (
            f"rebalance {delay} s after the interruption",
            lambda t=late_rebalance: run_flow(replace(flow, trigger=t), max_launches=clean.launched),  # type: ignore[misc]
        )

        async def early_rebalance(h: Harness, delay: float = delay) -> Goal:
            old = h.primary or ""
            h.notice(old, NoticeKind.REBALANCE)
            await _later(delay, lambda h: void(h.notice(old, NoticeKind.INTERRUPTION)))(h)
            return _moved_off(old)

        yield (
            f"interruption {delay} s after the rebalance",
            lambda t=early_rebalance: run_flow(replace(flow, trigger=t)),  # type: ignore[misc]
        )


def _gone_cases(full: bool) -> Iterator[Case]:
    for kind in (NoticeKind.INTERRUPTION, NoticeKind.REBALANCE):
        for which in ("terminated", "retired", "unknown"):

            async def trigger(h: Harness, kind: NoticeKind = kind, which: str = which) -> Goal:
                await _pool_switch(h)  # leaves a retired (then terminated) primary behind
                await h.settle(lambda: h.switch("to-pool") is SwitchPhase.COMPLETED)
                old = h.world.agent(AGENT).switches["to-pool"].status.old_instance_id or ""
                if which == "terminated":
                    await h.settle(lambda: not h.world.ec2.records[old].instance.live)
                elif which == "unknown":
                    old = "i-00000000000000dead"
                h.launched_before = len(h.world.ec2.records)
                primary = h.primary
                h.notice(old, kind)
                return lambda h: [] if h.primary == primary else [f"the primary moved to {h.primary}"]

            config = Config(wait=600) if which == "retired" else Config()
            yield (
                f"{kind.value} notice for a {which} instance",
                lambda t=trigger, c=config: run_flow(  # type: ignore[misc]
                    Flow("gone", c, t), max_launches=0
                ),
            )


def _priority_cases(full: bool) -> Iterator[Case]:
    delays = (0, 5, 10, 30, 60, 65, 70, 75, 80, 100, 200) if full else (0, 30, 100)
    pairs = (
        (SwitchReason.DECISION, None, SwitchReason.MANUAL, None),
        (SwitchReason.MANUAL, 60, SwitchReason.MANUAL, 80),
    )
    for low_reason, low_priority, high_reason, high_priority in pairs:
        for delay in delays:
            for first in ("low", "high"):

                async def trigger(
                    h: Harness,
                    delay: float = delay,
                    first: str = first,
                    lr: SwitchReason = low_reason,
                    lp: int | None = low_priority,
                    hr: SwitchReason = high_reason,
                    hp: int | None = high_priority,
                ) -> Goal:
                    def low(h: Harness) -> None:
                        target = SwitchTarget(kind=TargetKind.POOL, pool="m5a.large.us-east-1b")
                        h.world.request_switch(AGENT, "low", target, lr, lp)

                    def high(h: Harness) -> None:
                        target = SwitchTarget(kind=TargetKind.POOL, pool="m5.large.us-east-1b")
                        h.world.request_switch(AGENT, "high", target, hr, hp)

                    now, then = (low, high) if first == "low" else (high, low)
                    now(h)
                    if delay:
                        await _later(delay, then)(h)
                    else:
                        then(h)
                    return lambda h: _priority_goal(h, delay, first)

                yield (
                    f"{low_reason.value}/{low_priority} vs {high_reason.value}/{high_priority}, "
                    f"{first} first, {delay} s apart",
                    lambda t=trigger: run_flow(Flow("two switches", Config(), t)),  # type: ignore[misc]
                )


def _priority_goal(h: Harness, delay: float, first: str) -> list[str]:
    high, low = h.switch("high"), h.switch("low")
    if high is None or low is None:
        return [f"high={high} low={low}: not both created yet"]
    if high is not SwitchPhase.COMPLETED:
        return [f"the higher priority switch is {high.value}"]
    if low is SwitchPhase.SUPERSEDED:
        return []
    # The lower one may finish when it had cut over before the other started, or came after it ended.
    state = h.world.agent(AGENT)
    lo, hi = state.switches["low"], state.switches["high"]
    if delay and low is SwitchPhase.COMPLETED:
        cut, started, ended = lo.status.cutover_at, hi.status.started_at, hi.status.completed_at
        if first == "low" and cut is not None and started is not None and cut <= started:
            return []
        if first == "high" and ended is not None and ended <= lo.created_at:
            return []
    return [f"the lower priority switch is {low.value}, want Superseded"]


def scenarios() -> list[Scenario]:
    out = [crash_scenario(flow) for flow in FLOWS]
    out += [
        Scenario("AWS faults", "insufficient capacity in one pool", _one_pool_cases),
        Scenario("AWS faults", "insufficient capacity in every spot pool", _all_spot_cases),
        Scenario(
            "AWS faults",
            "throttling bursts",
            _burst_cases(lambda: Throttled("Rate exceeded", "RequestLimitExceeded")),
        ),
        Scenario(
            "AWS faults", "5xx errors", _burst_cases(lambda: Transient("InternalError", "InternalError"))
        ),
        Scenario("AWS faults", "slow responses", _slow_cases),
        Scenario(
            "AWS faults",
            "timeouts (call took effect, answer lost)",
            _burst_cases(lambda: Transient("Read timeout", "ReadTimeout"), When.AFTER),
        ),
        Scenario(
            "AWS faults",
            "Elastic IP moved, target groups failed (half way)",
            _half_way_cases,
        ),
        Scenario("Duplicates and disorder", "same notice from agent and SQS", _duplicate_cases),
        Scenario("Duplicates and disorder", "notices out of order", _disorder_cases),
        Scenario("Duplicates and disorder", "notice for an instance already gone", _gone_cases),
        Scenario("Duplicates and disorder", "two SwitchRequests for one agent", _priority_cases),
    ]
    return out


def _half_way_cases(full: bool) -> Iterator[Case]:
    config = Config(target_groups=True)
    flows = FAULT_FLOWS if full else ("failover without replica (spot)",)
    for name in flows:
        flow = FLOW[name]
        cfg = replace(flow.config, target_groups=True) if flow.config.mode != config.mode else config
        for n in (1, 2, 3) if full else (1,):
            setup = _fault_setup(
                Fault("move_traffic", lambda: Transient("target group", "InternalError"), n, When.HALF)
            )
            yield (
                f"{name}: {n} half moves",
                lambda flow=flow, setup=setup, cfg=cfg: run_flow(flow, setup=setup, config=cfg),  # type: ignore[misc]
            )


# ------------------------------------------------------------------------------------------ report
def run_all(full: bool, only: str | None = None) -> list[ScenarioResult]:
    results = []
    for scenario in scenarios():
        if only and only.lower() not in f"{scenario.group} {scenario.name}".lower():
            continue
        results.append(scenario.run(full))
    return results


def table(results: Sequence[ScenarioResult]) -> str:
    lines = [
        "| Group | Scenario | Runs | Failures | Lost items | Worst time without a primary (s) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r.group} | {r.name} | {r.runs} | {r.failures} | {r.lost} | {r.worst_gap:.0f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spot_operator.simulation.reliability", description=__doc__
    )
    parser.add_argument("--full", action="store_true", help="every step and variant (minutes, not seconds)")
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    parser.add_argument("--write", help="replace the generated table in this Markdown file")
    args = parser.parse_args(argv)
    logging.getLogger("spot_operator").setLevel(logging.ERROR)  # the runs fail calls on purpose
    started = time.perf_counter()
    results = run_all(args.full, args.only)
    seconds = time.perf_counter() - started
    text = table(results)
    print(text)
    for r in results:
        for example in r.examples:
            print(f"FAIL {r.name}: {example}")
    runs = sum(r.runs for r in results)
    print(f"{runs} runs in {seconds:.0f} s")
    if args.write:
        write(args.write, text, args.full, runs, seconds)
    return 1 if any(r.failures for r in results) else 0


BEGIN, END = "<!-- reliability:begin -->", "<!-- reliability:end -->"


def write(path: str, text: str, full: bool, runs: int, seconds: float) -> None:
    """Replace what sits between the markers in ``path`` with the table and how it was made."""
    with open(path, encoding="utf-8") as fh:
        doc = fh.read()
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    command = (
        "python -m spot_operator.simulation.reliability" + (" --full" if full else "") + f" --write {path}"
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    block = f"{BEGIN}\nGenerated by `{command}` on {stamp}: {runs} runs in {seconds:.0f} s.\n\n{text}\n{END}"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(head + block + tail)


if __name__ == "__main__":
    raise SystemExit(main())
