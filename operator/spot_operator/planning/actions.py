"""The planner's outputs: frozen actions, status to write, events. Each action carries a step key.

Actions emitted in one plan are independent of each other: the actuator may run them concurrently.
A step key names one step of one object's life; the actuator derives the AWS ClientToken from the
agent uid, the key and the attempt, so replaying a step after a crash finds its own work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from spot_operator.api import (
    ReplicaReason,
    ReplicaStatus,
    SpotAgentStatus,
    SwitchReason,
    SwitchRequestStatus,
    SwitchTarget,
)
from spot_operator.planning.model import Notice, Pool, Role


@dataclass(frozen=True)
class LaunchInstance:
    key: str
    candidates: tuple[Pool, ...]  # tried in order; the first with capacity wins
    role: Role
    purpose: str = ""
    epoch: int = 0
    attempt: int = 0
    emergency: bool = False


@dataclass(frozen=True)
class SetRole:
    key: str
    instance_id: str
    role: Role
    epoch: int = 0


@dataclass(frozen=True)
class MoveTraffic:
    key: str
    to_instance: str
    from_instance: str | None = None


@dataclass(frozen=True)
class MoveVolumes:
    key: str
    to_instance: str
    from_instance: str


@dataclass(frozen=True)
class TerminateInstance:
    key: str
    instance_id: str
    reason: str


@dataclass(frozen=True)
class CreateReplica:
    key: str
    name: str
    reason: ReplicaReason
    pool: str | None = None


@dataclass(frozen=True)
class OpenSwitch:
    key: str
    name: str
    target: SwitchTarget
    reason: SwitchReason
    priority: int | None = None
    message: str = ""


@dataclass(frozen=True)
class ForgetNotice:
    """The notice is handled (or moot): drop it from the inbox and the persisted status."""

    key: str
    notice: Notice


Action = (
    LaunchInstance
    | SetRole
    | MoveTraffic
    | MoveVolumes
    | TerminateInstance
    | CreateReplica
    | OpenSwitch
    | ForgetNotice
)


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event about a transition.

    ``obj`` is 'SpotAgent', 'Replica/<name>' or 'SwitchRequest/<name>'.
    """

    reason: str
    message: str
    obj: str = "SpotAgent"
    warning: bool = False


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    status: SpotAgentStatus
    replica_status: dict[str, ReplicaStatus] = field(default_factory=dict)
    switch_status: dict[str, SwitchRequestStatus] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
    # True once deletion has nothing left to do: the finalizer may go.
    released: bool = False
    now: datetime | None = None

    @property
    def idle(self) -> bool:
        return not self.actions
