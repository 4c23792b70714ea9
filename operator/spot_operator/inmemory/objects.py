"""Kubernetes objects in dicts: the Replicas and SwitchRequests the operator creates, statuses, events."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from spot_operator.api import ReplicaReason, SwitchReason, SwitchRequestSpec, SwitchTarget
from spot_operator.api.common import ObjectRef
from spot_operator.inmemory.clock import Clock
from spot_operator.planning.model import ReplicaObject, SwitchObject
from spot_operator.ports import AgentRef


@dataclass(frozen=True)
class RecordedEvent:
    kind: str
    name: str
    reason: str
    message: str
    warning: bool
    at: Any


class InMemoryObjects:
    """Implements :class:`spot_operator.ports.Objects`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.replicas: dict[tuple[str, str], ReplicaObject] = {}
        self.switches: dict[tuple[str, str], SwitchObject] = {}
        self.statuses: dict[tuple[str, str, str], dict[str, object]] = {}
        self.events: list[RecordedEvent] = []
        self.status_writes = 0
        self._uids = itertools.count(1)

    def _uid(self) -> str:
        return f"00000000-0000-4000-8000-{next(self._uids):012d}"

    async def create_replica(
        self, agent: AgentRef, name: str, reason: str, pool: str | None
    ) -> ReplicaObject:
        key = (agent.namespace, name)
        if key not in self.replicas:
            self.replicas[key] = ReplicaObject(
                name=name,
                uid=self._uid(),
                reason=ReplicaReason(reason),
                created_at=self.clock.now(),
                pool=pool,
                managed=True,
            )
        return self.replicas[key]

    async def create_switch(
        self,
        agent: AgentRef,
        name: str,
        target: SwitchTarget,
        reason: SwitchReason,
        priority: int | None,
        message: str,
    ) -> SwitchObject:
        key = (agent.namespace, name)
        if key not in self.switches:
            spec = SwitchRequestSpec(
                agent_ref=ObjectRef(name=agent.name), target=target, reason=reason, priority=priority
            )
            self.switches[key] = SwitchObject(
                name=name, uid=self._uid(), spec=spec, created_at=self.clock.now(), managed=True
            )
        return self.switches[key]

    async def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, object]) -> None:
        self.status_writes += 1
        self.statuses[(kind, namespace, name)] = status

    async def event(
        self, kind: str, namespace: str, name: str, uid: str, reason: str, message: str, warning: bool
    ) -> None:
        self.events.append(RecordedEvent(kind, name, reason, message, warning, self.clock.now()))
