"""The operator's one context object: ports, one AgentState per SpotAgent, the reconciler, the notice inbox.

kopf handlers, the agent API, the SQS consumer and the background loops all go through it. Reconciles
of one agent never overlap (the agent's lock), and anything may ask for one (``kick``): a notice, a
heartbeat, an observation, a kopf event, a requeue. A notice is acted on from memory at once: no
describe, no database, no model on the way to the Elastic IP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from spot_operator import metrics
from spot_operator.actuators import Ports
from spot_operator.agent_api.tokens import TokenStore
from spot_operator.api import Capacity, SwitchPhase, SwitchRequestStatus
from spot_operator.conversions import (
    agent_spec,
    agent_status,
    pending_notices,
    replica_from_body,
    replica_status,
    switch_from_body,
)
from spot_operator.planning import Market, Notice, NoticeKind, PlannerSettings, Pool, PoolQuote
from spot_operator.planning.conditions import set_condition
from spot_operator.planning.pools import candidate_zones
from spot_operator.ports import AgentRef, Ec2, Objects, Secrets, Traffic
from spot_operator.runtime.prices import PriceBook
from spot_operator.runtime.reconciler import Reconciler, ReconcileResult
from spot_operator.state import AgentState, Heartbeat, NoticeKeys, UnavailablePools

log = logging.getLogger(__name__)

NoticeOutcome = Literal["accepted", "duplicate", "unknown"]
# Risk used for a pool before any scorer has answered: cautious, but not so high that it forbids spot.
DEFAULT_RISK = 0.1


def utc_now() -> datetime:
    return datetime.now(UTC)


class InvalidSpec(ValueError):
    """A SpotAgent's spec the models reject (the CRD schema should have: an old CRD, or a hand edit)."""


@dataclass
class Operator:
    ec2: Ec2
    traffic: Traffic
    objects: Objects
    now: Callable[[], datetime] = utc_now
    planner: PlannerSettings = field(default_factory=PlannerSettings)
    book: PriceBook = field(default_factory=PriceBook)
    agents: dict[str, AgentState] = field(default_factory=dict)
    # Interruption risk per pool, filled by the decision loop from the scorer; read without waiting.
    risks: dict[Pool, float] = field(default_factory=dict)
    on_switch_done: Callable[[AgentState, str], None] | None = None
    # Called once per accepted notice, from whichever path it came first (the history store records it).
    on_notice: Callable[[AgentState, Notice], None] | None = None
    secrets: Secrets | None = None
    tokens: TokenStore | None = None

    def __post_init__(self) -> None:
        self.unavailable = UnavailablePools()
        self.ports = Ports(self.ec2, self.traffic, self.objects, self.now, self.unavailable)
        self.reconciler = Reconciler(
            self.ports,
            self.market_for,
            self.planner,
            on_switch_done=self._switch_done,
            on_status_written=self._status_written,
        )
        # Per agent, set (and replaced) each time its status is written: notice senders wait on it.
        self._status_writes: dict[str, asyncio.Event] = {}
        self._by_instance: dict[str, str] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.closing = False
        self.last_results: dict[str, ReconcileResult] = {}
        self.notice_times: dict[tuple[str, NoticeKind], float] = {}
        # Set when an agent asks for prices the book has not fetched yet: the price loop runs at once.
        self.prices_wanted = asyncio.Event()
        # Set when an agent waits for its first observation: the observe loop runs at once.
        self.observe_wanted = asyncio.Event()

    # -- objects, as kopf sees them -----------------------------------------------------------
    def upsert_agent(self, body: Mapping[str, Any]) -> AgentState:
        meta = body.get("metadata") or {}
        ref = AgentRef(str(meta.get("namespace", "default")), str(meta["name"]), str(meta.get("uid", "")))
        try:
            spec = agent_spec(body)
        except ValidationError as exc:
            raise InvalidSpec(_first_errors(exc)) from exc
        state = self.agents.get(f"{ref.namespace}/{ref.name}")
        if state is None or state.ref.uid != ref.uid:
            state = AgentState(ref, spec, created_at=_created(meta))
            state.status = agent_status(body)
            if state.status.primary is not None:
                state.last_primary_id = state.status.primary.instance_id
            for notice in pending_notices(state.status):
                state.add_notice(notice, written=True)
            if state.status.last_switch is not None:
                state.last_switch_at = state.status.last_switch.completed_at
            self.agents[state.key] = state
        if (state.spec.region, state.spec.instance_types) != (spec.region, spec.instance_types) or (
            state.spec is spec and self._needs_prices(spec.region, spec.instance_types)
        ):
            self.prices_wanted.set()
        state.spec = spec
        state.generation = int(meta.get("generation", state.generation) or 1)
        state.deleting = bool(meta.get("deletionTimestamp"))
        return state

    def _needs_prices(self, region: str, instance_types: Iterable[str]) -> bool:
        known = {pool.instance_type for pool in self.book.pools(region, instance_types)}
        return any(t not in known for t in instance_types)

    def seed_children(
        self, state: AgentState, replicas: Iterable[Mapping[str, Any]], switches: Iterable[Mapping[str, Any]]
    ) -> None:
        """Fill a fresh AgentState from the objects kopf indexed before any handler ran."""
        for body in replicas:
            self.upsert_replica(body, kick=False)
        for body in switches:
            self.upsert_switch(body, kick=False)

    def upsert_replica(self, body: Mapping[str, Any], kick: bool = True) -> AgentState | None:
        meta = body.get("metadata") or {}
        agent = ((body.get("spec") or {}).get("agentRef") or {}).get("name")
        state = self.agents.get(f"{meta.get('namespace', 'default')}/{agent}")
        if state is None:
            return None
        incoming = replica_from_body(body)
        known = state.replicas.get(incoming.name)
        if known is None or (known.uid != incoming.uid and incoming.uid):
            state.replicas[incoming.name] = incoming
            status = replica_status(body)
            if status is not None:
                state.replica_status[incoming.name] = status
        elif incoming.deleting and not known.deleting:
            state.replicas[incoming.name] = _with(known, deleting=True, uid=incoming.uid or known.uid)
        elif not known.uid and incoming.uid:
            state.replicas[incoming.name] = _with(known, uid=incoming.uid)
        if kick:
            self.kick(state.key)
        return state

    def upsert_switch(self, body: Mapping[str, Any], kick: bool = True) -> AgentState | None:
        meta = body.get("metadata") or {}
        agent = ((body.get("spec") or {}).get("agentRef") or {}).get("name")
        state = self.agents.get(f"{meta.get('namespace', 'default')}/{agent}")
        if state is None:
            return None
        try:
            incoming = switch_from_body(body)
        except ValidationError as exc:
            raise InvalidSpec(_first_errors(exc)) from exc
        known = state.switches.get(incoming.name)
        if known is None or (incoming.uid and known.uid and known.uid != incoming.uid):
            state.switches[incoming.name] = incoming
        elif not known.uid and incoming.uid:
            state.switches[incoming.name] = _with(known, uid=incoming.uid)
        if kick:
            self.kick(state.key)
        return state

    def forget_switch(self, namespace: str, agent: str, name: str) -> None:
        state = self.agents.get(f"{namespace}/{agent}")
        if state is not None:
            state.switches.pop(name, None)

    def forget_replica(self, namespace: str, agent: str, name: str) -> None:
        state = self.agents.get(f"{namespace}/{agent}")
        if state is not None:
            state.replicas.pop(name, None)
            state.replica_status.pop(name, None)

    def drop_agent(self, key: str) -> None:
        state = self.agents.pop(key, None)
        handle = self._timers.pop(key, None)
        if handle is not None:
            handle.cancel()
        if state is not None:
            for instance_id in state.instances:
                self._by_instance.pop(instance_id, None)

    # -- reconciling ----------------------------------------------------------------------------
    async def reconcile(self, key: str) -> ReconcileResult | None:
        state = self.agents.get(key)
        if state is None or self.closing:
            return None
        if state.observed_at is None:  # the observe cycle kicks it once EC2 has been described
            self.observe_wanted.set()
            return None
        result = await self.reconciler.reconcile(state)
        self.last_results[key] = result
        for instance_id in state.instances:
            self._by_instance[instance_id] = key
        self._requeue(key, result.plan.requeue_after)
        return result

    def kick(self, key: str) -> None:
        """Reconcile soon; several kicks while one runs make one more run, not many."""
        if self.closing:
            return
        self._dirty.add(key)
        worker = self._workers.get(key)
        if worker is None or worker.done():
            self._workers[key] = asyncio.get_running_loop().create_task(
                self._work(key), name=f"reconcile {key}"
            )

    async def _work(self, key: str) -> None:
        while key in self._dirty:
            self._dirty.discard(key)
            try:
                await self.reconcile(key)
            except Exception:  # a bug must not kill the worker silently: log it and retry later
                log.exception("reconcile of %s failed", key)
                self._requeue(key, 10.0)
                return

    def _requeue(self, key: str, seconds: float | None) -> None:
        if seconds is None:
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + seconds
        handle = self._timers.get(key)
        if handle is not None and not handle.cancelled() and handle.when() <= due:
            return
        if handle is not None:
            handle.cancel()
        self._timers[key] = loop.call_at(due, self.kick, key)

    async def settle(self, within: float = 30.0) -> None:
        """Wait until no reconcile is running or queued (tests and the sandbox use it)."""
        deadline = asyncio.get_running_loop().time() + within
        while any(not w.done() for w in self._workers.values()) or self._dirty:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("reconciles still running")
            await asyncio.sleep(0.01)

    async def shutdown(self, grace_seconds: float = 10.0) -> None:
        """Stop reconciling: no new runs, let the running ones finish within the grace, cancel the rest.
        Every step is idempotent, so a run cut short is finished by the next process."""
        self.closing = True
        self._dirty.clear()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        running = [w for w in self._workers.values() if not w.done()]
        if running:
            _, late = await asyncio.wait(running, timeout=grace_seconds)
            for worker in late:
                worker.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def _switch_done(self, state: AgentState, name: str) -> None:
        if self.on_switch_done is not None:
            self.on_switch_done(state, name)

    # -- the market, from memory ----------------------------------------------------------------
    def market_for(self, state: AgentState) -> Market:
        spec = state.spec
        region = spec.region
        prices = self.book.pools(region, spec.instance_types)
        zones = candidate_zones(spec, Market({p: PoolQuote(p, None) for p in prices}))
        quotes: dict[Pool, PoolQuote] = {}
        for instance_type in spec.instance_types:
            for zone in zones:
                pool = Pool(instance_type, zone)
                quotes[pool] = PoolQuote(pool, prices.get(pool), self.risks.get(pool, DEFAULT_RISK))
        on_demand = {
            t: p for t in spec.instance_types if (p := self.book.on_demand_price(region, t)) is not None
        }
        return Market(quotes, on_demand, self.unavailable.current(self.now()))

    # -- notices and heartbeats -----------------------------------------------------------------
    def route(self, instance_id: str) -> str | None:
        key = self._by_instance.get(instance_id)
        if key is not None and key in self.agents and instance_id in self.agents[key].instances:
            return key
        for agent_key, state in self.agents.items():
            for known in state.instances:
                self._by_instance[known] = agent_key
        key = self._by_instance.get(instance_id)
        return key if key in self.agents else None

    def submit_notice(self, notice: Notice, agent_key: str | None = None) -> NoticeOutcome:
        """Record a notice and start acting on it. The same notice twice (agent and SQS) is one."""
        key = agent_key or self.route(notice.instance_id)
        state = self.agents.get(key) if key else None
        if state is None or notice.instance_id not in state.instances:
            metrics.NOTICES.labels(notice.kind.value, notice.source, "unknown").inc()
            return "unknown"
        if not state.add_notice(notice):
            metrics.NOTICES.labels(notice.kind.value, notice.source, "true").inc()
            if not state.notice_written(notice.instance_id, notice.kind):
                self.kick(state.key)  # its sender is waiting for a status write: try one now
            return "duplicate"
        metrics.NOTICES.labels(notice.kind.value, notice.source, "false").inc()
        if notice.kind is NoticeKind.INTERRUPTION:
            # The pool is being reclaimed: nothing of ours should land there for a while.
            inst = state.instances[notice.instance_id]
            self.unavailable.mark([inst.pool], self.now())
        self.notice_times[(notice.instance_id, notice.kind)] = asyncio.get_running_loop().time()
        self.kick(state.key)
        if self.on_notice is not None:
            self.on_notice(state, notice)
        return "accepted"

    async def notice_written(
        self, notice: Notice, agent_key: str | None = None, wait_seconds: float = 5.0
    ) -> bool:
        """Wait until a crash can no longer lose ``notice`` (a status write holds it or its outcome).

        The sender is answered only then: the agent retries until a 2xx, SQS re-delivers what is not
        deleted. False after ``wait_seconds`` (the status could not be written: the sender should retry).
        """
        key = agent_key or self.route(notice.instance_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            state = self.agents.get(key) if key else None
            if state is None or state.notice_written(notice.instance_id, notice.kind):
                return True  # an agent deleted meanwhile takes its notices with it
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            written = self._status_writes.setdefault(state.key, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(written.wait(), remaining)

    def _status_written(self, state: AgentState, safe: NoticeKeys) -> None:
        state.notices_written(safe)
        written = self._status_writes.pop(state.key, None)
        if written is not None:
            written.set()

    def record_heartbeat(self, agent_key: str, instance_id: str, beat: Heartbeat) -> bool:
        state = self.agents.get(agent_key)
        if state is None or instance_id not in state.instances:
            return False
        previous = state.heartbeats.get(instance_id)
        state.heartbeats[instance_id] = beat
        became_ready = beat.sync_progress >= 100 and (previous is None or previous.sync_progress < 100)
        if previous is None or not previous.healthy or became_ready:
            self.kick(agent_key)  # a launch or a standby may have been waiting for exactly this
        return True

    # -- housekeeping -------------------------------------------------------------------------
    def fingerprint(self, key: str) -> tuple[object, ...]:
        state = self.agents[key]
        return (
            tuple(sorted((i.instance_id, i.state, i.role, i.epoch) for i in state.instances.values())),
            state.serving,
        )

    def spot_pools(self) -> dict[str, set[Pool]]:
        """Every candidate spot pool per region, for the scorer."""
        out: dict[str, set[Pool]] = {}
        for state in self.agents.values():
            market = self.market_for(state)
            out.setdefault(state.spec.region, set()).update(
                p for p in market.quotes if p.lifecycle is Capacity.SPOT
            )
        return out


def invalid_switch_status(message: str, now: datetime) -> SwitchRequestStatus:
    conditions = set_condition([], "Complete", False, "InvalidSpec", message, now)
    return SwitchRequestStatus(
        phase=SwitchPhase.FAILED, message=message, conditions=conditions, completed_at=now
    )


def _first_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "spec"
        parts.append(f"spec.{where}: {err['msg']}")
    return "; ".join(parts)


def _created(meta: Mapping[str, Any]) -> datetime:
    stamp = meta.get("creationTimestamp")
    if not stamp:
        return utc_now()
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def _with(obj: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(obj, **changes)
