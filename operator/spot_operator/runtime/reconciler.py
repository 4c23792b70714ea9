"""Reconcile one SpotAgent: plan -> actuate until the plan is idle, then write what changed.

Planning is microseconds and every round acts on what the previous round's calls returned, so a
failover runs as a handful of rounds with no DescribeInstances in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from spot_operator import metrics
from spot_operator.actuators import ActionResult, Actuator, Ports
from spot_operator.api import SpotAgentStatus, SwitchReason
from spot_operator.api.switchrequest import SwitchPhase
from spot_operator.errors import CloudError, NotFound
from spot_operator.planning import DEFAULT_SETTINGS, Event, Market, Plan, PlannerSettings, plan
from spot_operator.state import AgentState, NoticeKeys

log = logging.getLogger(__name__)

MarketFor = Callable[[AgentState], Market]


@dataclass
class ReconcileResult:
    plan: Plan
    rounds: int
    results: list[ActionResult] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def failed(self) -> list[ActionResult]:
        return [r for r in self.results if not r.ok]


class Reconciler:
    def __init__(
        self,
        ports: Ports,
        market_for: MarketFor,
        settings: PlannerSettings = DEFAULT_SETTINGS,
        max_rounds: int = 25,
        on_switch_done: Callable[[AgentState, str], None] | None = None,
        on_status_written: Callable[[AgentState, NoticeKeys], None] | None = None,
    ) -> None:
        self.ports = ports
        self.actuator = Actuator(ports)
        self.market_for = market_for
        self.settings = settings
        self.max_rounds = max_rounds
        self.on_switch_done = on_switch_done
        # Told which notices a SpotAgent status write made safe (their senders may be answered).
        self.on_status_written = on_status_written or AgentState.notices_written
        self._written: dict[tuple[str, str, str], dict[str, Any]] = {}

    async def reconcile(self, state: AgentState) -> ReconcileResult:
        started = time.perf_counter()
        async with state.lock:
            # New notices are written to the status while the rounds act on them, so their senders are
            # answered in one status write, not after the failover's AWS calls; the rounds do not wait.
            checkpoint = None
            if state.unwritten_notices:
                status = state.status.model_copy(update={"pending_notices": state.pending_notices()})
                checkpoint = asyncio.create_task(self._write_agent(state, status, state.notices_in(status)))
            try:
                result = await self._rounds(state)
            finally:
                if checkpoint is not None:
                    await asyncio.gather(checkpoint, return_exceptions=True)  # before the status below
            await self._write(state, result)
        metrics.RECONCILE_SECONDS.labels("SpotAgent").observe(time.perf_counter() - started)
        return result

    async def _rounds(self, state: AgentState) -> ReconcileResult:
        result: ReconcileResult | None = None
        for round_ in range(1, self.max_rounds + 1):
            current = plan(state.view(), self.market_for(state), self.ports.now(), self.settings)
            if result is None:
                result = ReconcileResult(current, round_)
            result.plan, result.rounds = current, round_
            result.events.extend(current.events)
            if current.idle:
                self._absorb(state, current)
                break
            # Act first: an OpenSwitch creates the object whose status this plan also computed.
            results = await self.actuator.execute(state, current.actions)
            self._absorb(state, current)
            result.results.extend(results)
            if any(not r.ok for r in results):
                # Let the planner see what failed once more, then stop: the requeue retries later.
                retry = plan(state.view(), self.market_for(state), self.ports.now(), self.settings)
                self._absorb(state, retry)
                result.plan = replace(retry, actions=(), requeue_after=min(retry.requeue_after or 5.0, 5.0))
                result.events.extend(retry.events)
                break
        else:
            log.error("%s: plan did not settle in %d rounds", state.key, self.max_rounds)
        assert result is not None
        return result

    def _absorb(self, state: AgentState, p: Plan) -> None:
        """Keep the statuses the plan computed: the next round and the next reconcile start from them."""
        for name, status in p.switch_status.items():
            sw = state.switches.get(name)
            if sw is None:
                continue
            was_final = sw.final
            state.switches[name] = replace(sw, status=status)
            if not was_final and state.switches[name].final:
                self._switch_ended(state, name)
        for name, rstatus in p.replica_status.items():
            rep = state.replicas.get(name)
            if rep is not None:
                state.replica_status[name] = rstatus
                state.replicas[name] = replace(
                    rep,
                    phase=rstatus.phase,
                    instance_id=rstatus.instance_id or rep.instance_id,
                    ready_at=rstatus.ready_at,
                )
        state.status = p.status.model_copy(update={"pending_notices": state.pending_notices()})
        if p.status.primary is not None:
            state.last_primary_id = p.status.primary.instance_id

    def _switch_ended(self, state: AgentState, name: str) -> None:
        sw = state.switches[name]
        result = sw.status.phase.value.lower()
        metrics.SWITCHES.labels(sw.spec.reason.value, result).inc()
        if sw.status.phase is SwitchPhase.COMPLETED and sw.spec.reason is not SwitchReason.EMERGENCY:
            state.last_switch_at = sw.status.completed_at
        if self.on_switch_done is not None:
            self.on_switch_done(state, name)

    async def _write_agent(self, state: AgentState, status: SpotAgentStatus, safe: NoticeKeys) -> None:
        """Write the SpotAgent's status; once written, the notices in ``safe`` can no longer be lost."""
        if await self._patch(state, "SpotAgent", state.ref.name, status.to_wire()):
            self.on_status_written(state, safe)

    async def _patch(self, state: AgentState, kind: str, name: str, body: dict[str, Any]) -> bool:
        """Write one status unless it is what was last written; False when the write failed."""
        key = (kind, state.ref.namespace, name)
        if self._written.get(key) == body:
            return True
        try:
            await self.ports.objects.patch_status(kind, state.ref.namespace, name, body)
        except NotFound:
            await self._recreate(state, kind, name)
            return False
        except CloudError as exc:  # the Kubernetes adapter maps API errors to CloudError too
            log.warning("%s: writing %s/%s status failed: %s", state.key, kind, name, exc)
            return False
        self._written[key] = body
        return True

    async def _write(self, state: AgentState, result: ReconcileResult) -> None:
        """Write statuses that changed and the events; a failed write is logged and retried next time."""
        ns = state.ref.namespace
        await self._write_agent(state, state.status, state.notices_in(state.status))
        for name, sw in state.switches.items():
            await self._patch(state, "SwitchRequest", name, sw.status.to_wire())
        for name, rstatus in state.replica_status.items():
            await self._patch(state, "Replica", name, rstatus.to_wire())
        for event in result.events:
            kind, _, name = event.obj.partition("/")
            uid = state.ref.uid if kind == "SpotAgent" else ""
            try:
                await self.ports.objects.event(
                    kind, ns, name or state.ref.name, uid, event.reason, event.message, event.warning
                )
            except CloudError as exc:
                log.warning("%s: event %s not recorded: %s", state.key, event.reason, exc)

    async def _recreate(self, state: AgentState, kind: str, name: str) -> None:
        """A switch the operator opened was not created (the API was down): create it now."""
        if kind != "SwitchRequest":
            return
        sw = state.switches[name]
        if not sw.managed:
            return
        await self.ports.objects.create_switch(
            state.ref, name, sw.spec.target, sw.spec.reason, sw.spec.priority, sw.status.message
        )
