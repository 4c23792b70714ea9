"""Run a plan's actions through the ports, concurrently, and fold what they returned into the AgentState.

Every action is idempotent: a launch carries a ClientToken from (owner uid, step key, attempt), tags
and traffic moves converge to the same end state when repeated, and terminating a terminated instance
is harmless. Errors never escape silently: a failed launch becomes a LaunchFailure the planner reads;
any other failure is returned in the result, logged and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from spot_operator import metrics
from spot_operator.api import SwitchRequestSpec
from spot_operator.api.common import ObjectRef
from spot_operator.errors import CloudError, InsufficientCapacity, NotFound
from spot_operator.planning.actions import (
    Action,
    CreateReplica,
    ForgetNotice,
    LaunchInstance,
    MoveTraffic,
    MoveVolumes,
    OpenSwitch,
    SetRole,
    TerminateInstance,
)
from spot_operator.planning.model import InstanceState, LaunchFailure, SwitchObject
from spot_operator.ports import Ec2, LaunchRequest, Objects, Traffic
from spot_operator.state import AgentState, UnavailablePools, client_token

log = logging.getLogger(__name__)

# Actions that change what a DescribeInstances / DescribeAddresses shows (see AgentState.observe).
_CHANGES_AWS = (LaunchInstance, SetRole, MoveTraffic, MoveVolumes, TerminateInstance)


@dataclass
class Ports:
    ec2: Ec2
    traffic: Traffic
    objects: Objects
    now: Callable[[], datetime]
    unavailable: UnavailablePools


@dataclass(frozen=True)
class ActionResult:
    action: Action
    ok: bool
    seconds: float
    error: str | None = None


class Actuator:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    async def execute(self, state: AgentState, actions: tuple[Action, ...]) -> list[ActionResult]:
        if len(actions) == 1:
            return [await self._run(state, actions[0])]
        return list(await asyncio.gather(*(self._run(state, a) for a in actions)))

    async def _run(self, state: AgentState, action: Action) -> ActionResult:
        name = type(action).__name__
        started = time.perf_counter()
        try:
            await self._dispatch(state, action)
        except CloudError as exc:
            if isinstance(action, _CHANGES_AWS):  # a failed call may have changed something
                state.changed_at = self.ports.now()
            seconds = time.perf_counter() - started
            metrics.ACTION_SECONDS.labels(name, "error").observe(seconds)
            log.warning(
                "%s %s failed: %s",
                state.key,
                action.key,
                exc,
                extra={"agent": state.key, "action": name, "code": exc.code},
            )
            return ActionResult(action, False, seconds, f"{exc.code or type(exc).__name__}: {exc}")
        if isinstance(action, _CHANGES_AWS):
            state.changed_at = self.ports.now()
        seconds = time.perf_counter() - started
        metrics.ACTION_SECONDS.labels(name, "ok").observe(seconds)
        return ActionResult(action, True, seconds)

    async def _dispatch(self, state: AgentState, action: Action) -> None:
        if isinstance(action, LaunchInstance):
            await self._launch(state, action)
        elif isinstance(action, SetRole):
            await self.ports.ec2.set_role(state.spec.region, action.instance_id, action.role, action.epoch)
            known = state.instances.get(action.instance_id)
            if known is not None:
                state.instances[action.instance_id] = replace(
                    known, role=action.role, epoch=action.epoch or known.epoch
                )
        elif isinstance(action, MoveTraffic):
            try:
                moved = await self.ports.traffic.move(state.traffic, action.to_instance, action.from_instance)
            except CloudError:
                state.traffic_unconfirmed = action.to_instance  # it may have moved part way
                state.serving = state.observed_serving(state.serving)
                raise
            state.serving = action.to_instance
            state.traffic_unconfirmed = None
            for part, seconds in (
                ("elastic-ip", moved.elastic_ip_seconds),
                ("target-groups", moved.target_groups_seconds),
                ("dns", moved.dns_seconds),
            ):
                if seconds is not None:
                    metrics.TRAFFIC_MOVE_SECONDS.labels(part).observe(seconds)
        elif isinstance(action, MoveVolumes):
            volumes = [(v.volume_id, v.device_name) for v in state.spec.data_volumes]
            await self.ports.ec2.move_volumes(
                state.spec.region, volumes, action.from_instance or None, action.to_instance
            )
            state.volumes_attached_to = action.to_instance
        elif isinstance(action, TerminateInstance):
            await self._terminate(state, action)
        elif isinstance(action, CreateReplica):
            obj = await self.ports.objects.create_replica(
                state.ref, action.name, action.reason.value, action.pool
            )
            state.replicas[obj.name] = obj
        elif isinstance(action, OpenSwitch):
            await self._open_switch(state, action)
        elif isinstance(action, ForgetNotice):
            state.forget_notice(action.notice, self.ports.now())
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"unknown action {action!r}")

    async def _launch(self, state: AgentState, action: LaunchInstance) -> None:
        now = self.ports.now()
        unavailable = self.ports.unavailable.current(now)
        candidates = tuple(p for p in action.candidates if p not in unavailable)
        if not candidates and action.emergency:
            candidates = action.candidates  # capacity may be back; an emergency tries anyway
        previous = state.launch_failures.get(action.key)
        attempts = previous.attempts if previous else 0
        errors = (previous.errors if previous else 0) + 1
        if not candidates:
            state.launch_failures[action.key] = LaunchFailure(
                "InsufficientCapacity",
                "every candidate pool recently refused capacity",
                now,
                attempts + 1,
                errors=errors,
            )
            return
        request = LaunchRequest(
            owner=state.ref.uid,
            agent=state.key,
            key=action.key,
            client_token=client_token(state.ref.uid, action.key, action.attempt),
            candidates=candidates,
            role=action.role,
            launch=state.launch_spec,
            purpose=action.purpose,
            epoch=action.epoch,
            replay=previous is not None and previous.retryable,
            emergency=action.emergency,
        )
        try:
            outcome = await self.ports.ec2.launch(request)
        except InsufficientCapacity as exc:
            self.ports.unavailable.mark(exc.pools or candidates, now)  # type: ignore[arg-type]
            state.launch_failures[action.key] = LaunchFailure(
                "InsufficientCapacity", str(exc), now, attempts + 1, errors=errors
            )
            raise
        except CloudError as exc:
            # A retryable error leaves the outcome unknown: keep the attempt, hence the token, the same.
            counted = attempts if exc.retryable else attempts + 1
            state.launch_failures[action.key] = LaunchFailure(
                exc.code or type(exc).__name__, str(exc), now, counted, exc.retryable, errors
            )
            raise
        self.ports.unavailable.mark(outcome.refused, now)
        state.launch_failures.pop(action.key, None)
        state.instances[outcome.instance.instance_id] = outcome.instance

    async def _terminate(self, state: AgentState, action: TerminateInstance) -> None:
        with contextlib.suppress(NotFound):  # already gone: the goal is reached
            await self.ports.ec2.terminate(state.spec.region, [action.instance_id])
        known = state.instances.get(action.instance_id)
        if known is not None and known.live:
            state.instances[action.instance_id] = replace(known, state=InstanceState.SHUTTING_DOWN)

    async def _open_switch(self, state: AgentState, action: OpenSwitch) -> None:
        # The switch starts at once from memory; the SwitchRequest object records it for people and for
        # a restarted operator. A failed create is retried by the status writer.
        if action.name not in state.switches:
            spec = SwitchRequestSpec(
                agent_ref=ObjectRef(name=state.ref.name),
                target=action.target,
                reason=action.reason,
                priority=action.priority,
            )
            state.switches[action.name] = SwitchObject(
                name=action.name, uid="", spec=spec, created_at=self.ports.now(), managed=True
            )
        created = await self.ports.objects.create_switch(
            state.ref, action.name, action.target, action.reason, action.priority, action.message
        )
        current = state.switches[action.name]
        state.switches[action.name] = replace(created, status=current.status, created_at=current.created_at)
