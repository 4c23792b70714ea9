"""Fault injection over the in-memory ports: crash the operator at the Nth side effect, or make AWS fail.

The wrappers implement the operator's ports (:class:`~spot_operator.ports.Ec2`, ``Traffic``, ``Objects``)
around the in-memory ones and pass every call through one :class:`Injector`:

- a :class:`Fuse` counts the operator's side-effecting calls (EC2, traffic, Kubernetes writes) and
  raises :class:`Crash` instead of the call after ``after`` of them; once blown, every later call of
  the dead process raises too, so nothing it had in flight lands;
- a list of :class:`Fault` rules makes chosen calls fail as AWS does: before the effect (throttling,
  5xx, insufficient capacity), after it (a timeout: the call took effect, the answer was lost), half
  way (an Elastic IP moved but the target groups not), or slowly (the simulated clock moves on).

Everything is deterministic: the same rules and the same world give the same run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from spot_operator.api import SwitchReason, SwitchTarget
from spot_operator.inmemory import FixedClock, InMemoryEc2, InMemoryObjects, InMemoryTraffic
from spot_operator.planning.model import ReplicaObject, Role, SwitchObject
from spot_operator.ports import (
    AgentRef,
    LaunchOutcome,
    LaunchRequest,
    ObservedInstance,
    TrafficMove,
    TrafficTarget,
)

T = TypeVar("T")


class Crash(BaseException):
    """The operator process (or its reconcile task) died at this call.

    A BaseException, so no ``except Exception`` / ``except CloudError`` on the way up can swallow it.
    """


@dataclass
class Fuse:
    """Lets ``after`` side-effecting calls through, then dies (None: never)."""

    after: int | None = None
    calls: int = 0
    blown: bool = False
    log: list[str] = field(default_factory=list)

    def spend(self, operation: str) -> None:
        if self.blown or (self.after is not None and self.calls >= self.after):
            self.blown = True
            raise Crash(f"operator died before {operation} (call {self.calls + 1})")
        self.calls += 1
        self.log.append(operation)


class When(StrEnum):
    BEFORE = "before"  # the call fails and nothing happened (throttling, 5xx, no capacity)
    AFTER = "after"  # the call took effect, then the answer was lost (a client timeout)
    HALF = "half"  # traffic only: the Elastic IP moved, the target groups did not


@dataclass
class Fault:
    """Fail the first ``times`` calls of ``operation`` ('*' for every operation) from now on."""

    operation: str
    error: Callable[[], Exception] | None = None
    times: int = 1
    when: When = When.BEFORE
    latency_seconds: float = 0.0
    hits: int = 0

    def matches(self, operation: str) -> bool:
        return self.hits < self.times and self.operation in ("*", operation)


@dataclass
class Injector:
    clock: FixedClock
    fuse: Fuse = field(default_factory=Fuse)
    faults: list[Fault] = field(default_factory=list)

    def fault_for(self, operation: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(operation):
                fault.hits += 1
                return fault
        return None

    async def call(
        self, operation: str, effect: Callable[[], Awaitable[T]], half: Callable[[], None] | None = None
    ) -> T:
        self.fuse.spend(operation)
        fault = self.fault_for(operation)
        if fault is None:
            return await effect()
        if fault.latency_seconds:
            self.clock.advance(fault.latency_seconds)
        error = fault.error() if fault.error is not None else None
        if error is not None and fault.when is When.BEFORE:
            raise error
        if error is not None and fault.when is When.HALF and half is not None:
            half()
            raise error
        result = await effect()
        if error is not None:
            raise error
        return result


class FaultyEc2:
    """Implements :class:`spot_operator.ports.Ec2` over an :class:`InMemoryEc2`."""

    def __init__(self, inner: InMemoryEc2, injector: Injector) -> None:
        self.inner = inner
        self.injector = injector

    async def launch(self, request: LaunchRequest) -> LaunchOutcome:
        return await self.injector.call("launch", lambda: self.inner.launch(request))

    async def describe_owned(self, region: str) -> list[ObservedInstance]:
        return await self.inner.describe_owned(region)  # a read: nothing to crash half way

    async def set_role(self, region: str, instance_id: str, role: Role, epoch: int = 0) -> None:
        await self.injector.call("set_role", lambda: self.inner.set_role(region, instance_id, role, epoch))

    async def terminate(self, region: str, instance_ids: Sequence[str]) -> None:
        await self.injector.call("terminate", lambda: self.inner.terminate(region, instance_ids))

    async def create_image(self, region: str, instance_id: str, name: str, client_token: str) -> str:
        return await self.injector.call(
            "create_image", lambda: self.inner.create_image(region, instance_id, name, client_token)
        )

    async def move_volumes(
        self, region: str, volumes: Sequence[tuple[str, str]], from_instance: str | None, to_instance: str
    ) -> None:
        await self.injector.call(
            "move_volumes", lambda: self.inner.move_volumes(region, volumes, from_instance, to_instance)
        )


class FaultyTraffic:
    """Implements :class:`spot_operator.ports.Traffic`; keeps the target groups apart from the Elastic IP.

    ``groups`` says where each target-group set points, so a move that fails half way (the Elastic IP
    moved, the target groups did not) can be seen after the fact.
    """

    def __init__(self, inner: InMemoryTraffic, injector: Injector) -> None:
        self.inner = inner
        self.injector = injector
        self.groups: dict[tuple[str, ...], str | None] = {}

    async def move(self, target: TrafficTarget, to_instance: str, from_instance: str | None) -> TrafficMove:
        async def whole() -> TrafficMove:
            moved = await self.inner.move(target, to_instance, from_instance)
            if target.target_group_arns:
                self.groups[target.target_group_arns] = to_instance
            return moved

        def half() -> None:
            self.inner.pointing[self.inner._key(target)] = to_instance

        return await self.injector.call("move_traffic", whole, half)

    async def serving(self, region: str, allocation_ids: Sequence[str]) -> dict[str, str | None]:
        return await self.inner.serving(region, allocation_ids)


class FaultyObjects:
    """Implements :class:`spot_operator.ports.Objects`: Kubernetes writes die with the process too."""

    def __init__(self, inner: InMemoryObjects, injector: Injector) -> None:
        self.inner = inner
        self.injector = injector

    async def create_replica(
        self, agent: AgentRef, name: str, reason: str, pool: str | None
    ) -> ReplicaObject:
        return await self.injector.call(
            "create_replica", lambda: self.inner.create_replica(agent, name, reason, pool)
        )

    async def create_switch(
        self,
        agent: AgentRef,
        name: str,
        target: SwitchTarget,
        reason: SwitchReason,
        priority: int | None,
        message: str,
    ) -> SwitchObject:
        return await self.injector.call(
            "create_switch",
            lambda: self.inner.create_switch(agent, name, target, reason, priority, message),
        )

    async def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, object]) -> None:
        await self.injector.call(
            "patch_status", lambda: self.inner.patch_status(kind, namespace, name, status)
        )

    async def event(
        self, kind: str, namespace: str, name: str, uid: str, reason: str, message: str, warning: bool
    ) -> None:
        await self.injector.call(
            "event", lambda: self.inner.event(kind, namespace, name, uid, reason, message, warning)
        )


__all__ = ["Crash", "Fault", "FaultyEc2", "FaultyObjects", "FaultyTraffic", "Fuse", "Injector", "When"]
