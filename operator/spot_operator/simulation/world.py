"""A whole operator world in memory: a clock, EC2, traffic, Kubernetes objects and the real reconciler.

The simulator, the scripted demo and the planner's property tests drive it: ``tick()`` is one operator
cycle (observe EC2, take heartbeats from the simulated on-instance agents, reconcile every agent).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from spot_operator.actuators import Ports
from spot_operator.api import (
    ReplicaStatus,
    SpotAgentSpec,
    SpotAgentStatus,
    SwitchReason,
    SwitchRequestSpec,
    SwitchRequestStatus,
    SwitchTarget,
)
from spot_operator.api.common import ObjectRef
from spot_operator.inmemory import FixedClock, InMemoryEc2, InMemoryObjects, InMemoryTraffic
from spot_operator.planning import (
    DEFAULT_SETTINGS,
    Instance,
    Market,
    Notice,
    NoticeKind,
    PlannerSettings,
    Pool,
    PoolQuote,
    ReplicaObject,
    Role,
    SwitchObject,
)
from spot_operator.ports import AgentRef
from spot_operator.runtime.reconciler import Reconciler, ReconcileResult
from spot_operator.state import AgentState, Heartbeat, NoticeKeys, UnavailablePools


@dataclass
class World:
    clock: FixedClock = field(default_factory=FixedClock)
    boot_seconds: float = 0.0
    settings: PlannerSettings = DEFAULT_SETTINGS
    prices: dict[Pool, float] = field(default_factory=dict)
    risks: dict[Pool, float] = field(default_factory=dict)
    on_demand: dict[str, float] = field(default_factory=dict)
    agents: dict[str, AgentState] = field(default_factory=dict)
    # Instances whose simulated agent is silent (no heartbeats).
    muted: set[str] = field(default_factory=set)
    # Seconds after launch before a simulated agent's first heartbeat.
    agent_start_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.ec2 = InMemoryEc2(self.clock, boot_seconds=self.boot_seconds)
        self.traffic = InMemoryTraffic()
        self.objects = InMemoryObjects(self.clock)
        self.unavailable = UnavailablePools()
        self.ports = Ports(self.ec2, self.traffic, self.objects, self.clock.now, self.unavailable)
        self.reconciler = self._reconciler()
        self.unacknowledged: dict[tuple[str, NoticeKind], Notice] = {}
        self._uids = itertools.count(1)

    # -- the market ----------------------------------------------------------------------------
    def market_for(self, state: AgentState) -> Market:
        quotes = {
            pool: PoolQuote(pool, price, self.risks.get(pool, 0.05))
            for pool, price in self.prices.items()
            if pool.zone.startswith(state.spec.region) and pool.instance_type in state.spec.instance_types
        }
        return Market(quotes, dict(self.on_demand), self.unavailable.current(self.clock.now()))

    # -- objects -------------------------------------------------------------------------------
    def add_agent(self, name: str, spec: SpotAgentSpec, namespace: str = "default") -> AgentState:
        uid = f"uid-{next(self._uids):04d}-{name}"
        state = AgentState(AgentRef(namespace, name, uid), spec, created_at=self.clock.now())
        self.agents[state.key] = state
        return state

    def agent(self, name: str, namespace: str = "default") -> AgentState:
        return self.agents[f"{namespace}/{name}"]

    def request_switch(
        self,
        agent: str,
        name: str,
        target: SwitchTarget,
        reason: SwitchReason = SwitchReason.MANUAL,
        priority: int | None = None,
    ) -> SwitchObject:
        state = self.agent(agent)
        spec = SwitchRequestSpec(
            agent_ref=ObjectRef(name=agent), target=target, reason=reason, priority=priority
        )
        sw = SwitchObject(
            name=name, uid=f"uid-sw-{next(self._uids):04d}", spec=spec, created_at=self.clock.now()
        )
        state.switches[name] = sw
        self.objects.switches[(state.ref.namespace, name)] = sw
        return sw

    def add_replica(self, agent: str, replica: ReplicaObject) -> None:
        state = self.agent(agent)
        state.replicas[replica.name] = replica
        self.objects.replicas[(state.ref.namespace, replica.name)] = replica

    def restart(self) -> None:
        """A new operator process: everything in memory is lost. Rebuild from EC2 tags, traffic and the
        objects' persisted statuses, as the real operator does on resume."""
        self.reconciler = self._reconciler()
        self.unavailable = UnavailablePools()
        self.ports.unavailable = self.unavailable
        self.agents = {key: self._rebuild(old) for key, old in self.agents.items()}

    def _reconciler(self, max_rounds: int = 25) -> Reconciler:
        return Reconciler(
            self.ports, self.market_for, self.settings, max_rounds, on_status_written=self._status_written
        )

    def _rebuild(self, old: AgentState) -> AgentState:
        ns, name = old.ref.namespace, old.ref.name
        state = AgentState(old.ref, old.spec, created_at=old.created_at)
        persisted = self.objects.statuses.get(("SpotAgent", ns, name))
        if persisted is not None:
            state.status = SpotAgentStatus.model_validate(persisted)
            if state.status.primary is not None:
                state.last_primary_id = state.status.primary.instance_id
            if state.status.last_switch is not None:
                state.last_switch_at = state.status.last_switch.completed_at
            for n in state.status.pending_notices:
                notice = Notice(n.instance_id, NoticeKind(n.kind), n.received_at, n.deadline, n.source)
                state.add_notice(notice, written=True)
        for (obj_ns, rep_name), rep in self.objects.replicas.items():
            if obj_ns != ns or rep_name not in old.replicas:
                continue
            written = self.objects.statuses.get(("Replica", ns, rep_name))
            if written is not None:
                rstatus = ReplicaStatus.model_validate(written)
                state.replica_status[rep_name] = rstatus
                rep = dataclasses.replace(
                    rep, phase=rstatus.phase, instance_id=rstatus.instance_id, ready_at=rstatus.ready_at
                )
            state.replicas[rep_name] = rep
        for (obj_ns, sw_name), sw in self.objects.switches.items():
            if obj_ns != ns or sw.spec.agent_ref.name != name:
                continue
            written = self.objects.statuses.get(("SwitchRequest", ns, sw_name))
            if written is not None:
                sw = dataclasses.replace(sw, status=SwitchRequestStatus.model_validate(written))
            state.switches[sw_name] = sw
        return state

    # -- the cloud -----------------------------------------------------------------------------
    def notice(
        self, instance_id: str, kind: NoticeKind, lead_seconds: float = 120.0, source: str = "agent"
    ) -> bool:
        """Deliver a notice to the agent that owns the instance; False if none does or it is a duplicate."""
        now = self.clock.now()
        deadline = now + timedelta(seconds=lead_seconds) if kind is NoticeKind.INTERRUPTION else None
        return self._deliver(Notice(instance_id, kind, now, deadline, source))

    def _deliver(self, notice: Notice) -> bool:
        for state in self.agents.values():
            if notice.instance_id in state.instances:
                accepted = state.add_notice(notice)
                if not state.notice_written(notice.instance_id, notice.kind):
                    # The sender has no answer until a status write holds it (the agent API answers 202
                    # then; SQS deletes then): it keeps sending, across operator restarts.
                    self.unacknowledged[(notice.instance_id, notice.kind)] = notice
                return accepted
        self.unacknowledged.pop((notice.instance_id, notice.kind), None)  # 404: the sender gives up
        return False

    def redeliver(self) -> None:
        """The senders retry every notice the operator has not acknowledged yet."""
        for notice in list(self.unacknowledged.values()):
            self._deliver(notice)

    def _status_written(self, state: AgentState, safe: NoticeKeys) -> None:
        state.notices_written(safe)
        for key in list(self.unacknowledged):
            if state.notice_written(*key) and (key in state.notices or key in state.handled_notices):
                del self.unacknowledged[key]

    def reclaim(self, instance_id: str) -> None:
        self.ec2.reclaim(instance_id)

    # -- one operator cycle --------------------------------------------------------------------
    def observe(self) -> None:
        now = self.clock.now()
        by_owner: dict[str, list[Instance]] = {}
        for region in {s.spec.region for s in self.agents.values()}:
            for obs in self._describe(region):
                by_owner.setdefault(obs[0], []).append(obs[1])
        for state in self.agents.values():
            state.observe(by_owner.get(state.ref.uid, []), now)
            pointing = self.traffic.serving_for(state.traffic) if state.traffic.configured else None
            state.serving = state.observed_serving(pointing)
            for inst in state.instances.values():
                started = inst.launched_at + timedelta(seconds=self.boot_seconds + self.agent_start_seconds)
                if inst.live and inst.instance_id not in self.muted and now >= started:
                    state.heartbeats[inst.instance_id] = Heartbeat(now)

    def _describe(self, region: str) -> Iterable[tuple[str, Instance]]:
        for rec in self.ec2.records.values():
            if rec.region == region:
                yield rec.owner, self.ec2._current(rec)

    async def reconcile_all(self, max_rounds: int | None = None) -> dict[str, ReconcileResult]:
        reconciler = self.reconciler
        if max_rounds is not None:  # a crash part-way: only the first rounds' actions happen
            reconciler = self._reconciler(max_rounds)
        return {key: await reconciler.reconcile(state) for key, state in list(self.agents.items())}

    async def tick(self, seconds: float = 0.0, max_rounds: int | None = None) -> dict[str, ReconcileResult]:
        if seconds:
            self.clock.advance(seconds)
        self.observe()
        self.redeliver()
        return await self.reconcile_all(max_rounds)

    async def run_until(
        self, done: Callable[[], bool], step_seconds: float = 5.0, max_seconds: float = 3600.0
    ) -> float:
        """Tick until ``done()``; returns simulated seconds spent. Raises if it never happens."""
        start = self.clock.now()
        await self.tick()
        while not done():
            if (self.clock.now() - start).total_seconds() > max_seconds:
                raise TimeoutError(f"not done after {max_seconds} simulated seconds")
            await self.tick(step_seconds)
        return (self.clock.now() - start).total_seconds()

    # -- what tests look at --------------------------------------------------------------------
    def live(self, agent: str) -> list[Instance]:
        return self.ec2.live(self.agent(agent).ref.uid)

    def primaries(self, agent: str) -> list[Instance]:
        return [i for i in self.live(agent) if i.role is Role.PRIMARY]

    def serving(self, agent: str) -> str | None:
        return self.traffic.serving_for(self.agent(agent).traffic)

    def at(self, offset_seconds: float) -> datetime:
        return self.clock.now() + timedelta(seconds=offset_seconds)


def with_prices(world: World, prices: dict[str, float], risks: dict[str, float] | None = None) -> World:
    """Set spot prices (and risks) by pool name, e.g. {'m5.large.us-east-1a': 0.035}."""
    for name, price in prices.items():
        world.prices[Pool.parse(name)] = price
    for name, risk in (risks or {}).items():
        world.risks[Pool.parse(name)] = risk
    return world


__all__ = ["World", "with_prices"]
