"""The planner's inputs: frozen snapshots of what was observed. No I/O, no clock: ``now`` is passed in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from spot_operator.api import (
    Capacity,
    ReplicaPhase,
    ReplicaReason,
    SpotAgentSpec,
    SpotAgentStatus,
    SwitchRequestSpec,
    SwitchRequestStatus,
)
from spot_operator.api.replica import REPLICA_FINAL_PHASES
from spot_operator.api.switchrequest import SWITCH_FINAL_PHASES, SwitchReason


@dataclass(frozen=True, order=True)
class Pool:
    """A capacity pool: an instance type in a zone, bought as spot or on-demand."""

    instance_type: str
    zone: str
    lifecycle: Capacity = Capacity.SPOT

    @property
    def name(self) -> str:
        """The wire name, '<type>.<zone>' (lifecycle is carried separately)."""
        return f"{self.instance_type}.{self.zone}"

    @property
    def is_spot(self) -> bool:
        return self.lifecycle is Capacity.SPOT

    def as_on_demand(self) -> Pool:
        return Pool(self.instance_type, self.zone, Capacity.ON_DEMAND)

    def __str__(self) -> str:
        return self.name if self.is_spot else f"{self.name}/on-demand"

    @classmethod
    def parse(cls, name: str, lifecycle: Capacity = Capacity.SPOT) -> Pool:
        """'m5.large.us-east-1a' -> Pool('m5.large', 'us-east-1a'). The zone is the last dotted part."""
        instance_type, sep, zone = name.rpartition(".")
        if not sep or "." not in instance_type or not zone:
            raise ValueError(f"malformed pool {name!r}: expected '<instance type>.<zone>'")
        return cls(instance_type, zone, lifecycle)


class InstanceState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    SHUTTING_DOWN = "shutting-down"
    TERMINATED = "terminated"


LIVE_STATES = frozenset({InstanceState.PENDING, InstanceState.RUNNING})


class Role(StrEnum):
    """The ``spotoptimizer.io/role`` tag."""

    PRIMARY = "primary"
    REPLICA = "replica"
    RETIRING = "retiring"


@dataclass(frozen=True)
class Instance:
    """One EC2 instance carrying our owner tag, as last observed (or as we know we left it)."""

    instance_id: str
    pool: Pool
    role: Role
    state: InstanceState
    launched_at: datetime
    launch_key: str = ""
    # The object it was launched for: "replica/<name>" or "switch/<name>"; empty for a primary.
    purpose: str = ""
    # Monotonic primary generation; the primary with the highest epoch is the rightful one.
    epoch: int = 0
    last_heartbeat: datetime | None = None
    sync_progress: int = 100

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES


class NoticeKind(StrEnum):
    INTERRUPTION = "interruption"  # the 2-minute spot notice (terminate, stop or hibernate)
    REBALANCE = "rebalance"  # elevated risk of interruption
    MAINTENANCE = "maintenance"  # scheduled event (reboot, retirement)
    STOPPED = "stopped"  # EC2 reported the instance stopping/terminated without a notice


@dataclass(frozen=True)
class Notice:
    instance_id: str
    kind: NoticeKind
    received_at: datetime
    deadline: datetime | None = None
    source: str = "agent"

    @property
    def emergency(self) -> bool:
        return self.kind in (NoticeKind.INTERRUPTION, NoticeKind.STOPPED, NoticeKind.MAINTENANCE)


@dataclass(frozen=True)
class ReplicaObject:
    """A Replica custom resource, reduced to what planning needs."""

    name: str
    uid: str
    reason: ReplicaReason
    created_at: datetime
    pool: str | None = None
    phase: ReplicaPhase | None = None
    instance_id: str | None = None
    ready_at: datetime | None = None
    # Created by the operator (standby, rebalance) rather than by a person.
    managed: bool = False
    deleting: bool = False

    @property
    def final(self) -> bool:
        return self.phase in REPLICA_FINAL_PHASES

    @property
    def purpose(self) -> str:
        return f"replica/{self.name}"

    @property
    def launch_key(self) -> str:
        # Operator-made names are unique by construction (timestamp or instance id); a person may
        # delete and re-create a name, so theirs are keyed by uid.
        return f"replica/{self.name}" if self.managed else f"replica/{self.uid}"


@dataclass(frozen=True)
class SwitchObject:
    """A SwitchRequest custom resource: its immutable spec and its last written status."""

    name: str
    uid: str
    spec: SwitchRequestSpec
    created_at: datetime
    status: SwitchRequestStatus = field(default_factory=SwitchRequestStatus)
    managed: bool = False

    @property
    def final(self) -> bool:
        return self.status.phase in SWITCH_FINAL_PHASES

    @property
    def priority(self) -> int:
        return self.spec.effective_priority

    @property
    def emergency(self) -> bool:
        return self.spec.reason is SwitchReason.EMERGENCY

    @property
    def purpose(self) -> str:
        return f"switch/{self.name}"

    @property
    def launch_key(self) -> str:
        return f"switch/{self.name}" if self.managed else f"switch/{self.uid}"


@dataclass(frozen=True)
class LaunchFailure:
    """The last definitive failure of a keyed launch (nothing was created)."""

    reason: str
    message: str
    at: datetime
    attempts: int = 1
    # Throttling, 5xx, a timeout: the step may be retried as it is (same ClientToken).
    retryable: bool = False
    errors: int = 1  # failed calls of this step in a row, retryable or not


@dataclass(frozen=True)
class PoolQuote:
    pool: Pool
    price: float | None
    risk: float = 0.0


@dataclass(frozen=True)
class Market:
    """Prices and interruption risk per pool, plus the pools EC2 recently refused (capacity)."""

    quotes: Mapping[Pool, PoolQuote] = field(default_factory=dict)
    on_demand_prices: Mapping[str, float] = field(default_factory=dict)
    unavailable: frozenset[Pool] = frozenset()

    def price(self, pool: Pool) -> float | None:
        if not pool.is_spot:
            return self.on_demand_prices.get(pool.instance_type)
        quote = self.quotes.get(pool)
        return quote.price if quote else None

    def risk(self, pool: Pool) -> float:
        if not pool.is_spot:
            return 0.0
        quote = self.quotes.get(pool)
        return quote.risk if quote else 1.0


@dataclass(frozen=True)
class AgentView:
    """Everything observed about one SpotAgent."""

    namespace: str
    name: str
    uid: str
    spec: SpotAgentSpec
    generation: int = 1
    instances: tuple[Instance, ...] = ()
    # The instance the Elastic IP / target groups point at (None: nowhere, or no traffic configured).
    serving: str | None = None
    replicas: tuple[ReplicaObject, ...] = ()
    switches: tuple[SwitchObject, ...] = ()
    notices: tuple[Notice, ...] = ()
    launch_failures: Mapping[str, LaunchFailure] = field(default_factory=dict)
    # Completion time of the last decision/manual switch, for cooldown.
    last_switch_at: datetime | None = None
    # The last primary we reported, to name the failover when it vanished without a notice.
    last_primary_id: str | None = None
    deleting: bool = False
    created_at: datetime | None = None
    # The instance the spec's data volumes are attached to (None: detached or no volumes).
    volumes_attached_to: str | None = None
    # The status last written, for lastTransitionTime and the savings to date.
    status: SpotAgentStatus = field(default_factory=SpotAgentStatus)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class PlannerSettings:
    """Tunables of the planner that are not per-workload policy."""

    launch_timeout_seconds: float = 900.0
    replica_ready_timeout_seconds: float = 1800.0
    launch_retry_seconds: float = 10.0
    wait_poll_seconds: float = 5.0
    hysteresis_percent: float = 5.0
    max_launch_attempts: int = 5
