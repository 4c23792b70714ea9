"""Narrow interfaces to the outside world, listing only the calls the operator makes.

Adapters (boto3, Kubernetes, SQLAlchemy, xgboost) implement them; the in-memory implementations in
:mod:`spot_operator.inmemory` serve the simulator, the demo and the tests. Every method is async:
adapters run blocking SDK calls in threads so the failover path never waits behind another agent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from spot_operator.api import SpotAgentSpec, SwitchReason, SwitchTarget
from spot_operator.planning.model import Instance, Notice, Pool, ReplicaObject, Role, SwitchObject

# --------------------------------------------------------------------------------------------- EC2


@dataclass(frozen=True)
class LaunchSpec:
    """How to launch an instance for one SpotAgent, independent of the pool."""

    region: str
    launch_template_id: str | None = None
    launch_template_name: str | None = None
    launch_template_version: str = "$Default"
    image_id: str | None = None
    instance_profile: str | None = None
    security_groups: tuple[str, ...] = ()
    subnets: Mapping[str, str] = field(default_factory=dict)
    user_data: str | None = None

    @classmethod
    def from_spec(cls, spec: SpotAgentSpec) -> LaunchSpec:
        lt = spec.launch_template
        return cls(
            region=spec.region,
            launch_template_id=lt.id if lt else None,
            launch_template_name=lt.name if lt else None,
            launch_template_version=lt.version if lt else "$Default",
            image_id=spec.image,
            instance_profile=spec.instance_profile,
            security_groups=tuple(spec.security_groups),
            subnets=dict(spec.subnets),
            user_data=spec.user_data,
        )


@dataclass(frozen=True)
class LaunchRequest:
    owner: str  # the SpotAgent's uid, tagged as spotoptimizer.io/owner
    agent: str  # "<namespace>/<name>"
    key: str  # the planner's step key
    client_token: str  # derived from owner, key and attempt: a replay never launches twice
    candidates: tuple[Pool, ...]
    role: Role
    launch: LaunchSpec
    purpose: str = ""
    epoch: int = 0
    image_override: str | None = None  # an AMI of the primary, when a replacement must carry its disk
    # The same token was sent before and its answer was lost (throttled, 5xx, timed out): the instance
    # may exist. EC2 honours ClientToken; the adapter also looks the token up first, for clouds that don't.
    replay: bool = False
    emergency: bool = False  # a failover's launch: its AWS calls go ahead of bulk work


@dataclass(frozen=True)
class LaunchOutcome:
    instance: Instance
    refused: tuple[Pool, ...] = ()  # pools that had no capacity before one worked


@dataclass(frozen=True)
class ObservedInstance:
    owner: str
    agent: str
    region: str
    instance: Instance


class Ec2(Protocol):
    async def launch(self, request: LaunchRequest) -> LaunchOutcome:
        """Launch in the first candidate pool with capacity. Raises InsufficientCapacity when none has any."""
        ...

    async def describe_owned(self, region: str) -> list[ObservedInstance]:
        """Every instance carrying our owner tag in the region: one paginated call for all agents."""
        ...

    async def set_role(self, region: str, instance_id: str, role: Role, epoch: int = 0) -> None: ...

    async def terminate(self, region: str, instance_ids: Sequence[str]) -> None: ...

    async def create_image(self, region: str, instance_id: str, name: str, client_token: str) -> str: ...

    async def move_volumes(
        self, region: str, volumes: Sequence[tuple[str, str]], from_instance: str | None, to_instance: str
    ) -> None:
        """Detach (volume id, device) pairs from one instance and attach them to another."""
        ...


# ----------------------------------------------------------------------------------------- Traffic


@dataclass(frozen=True)
class TrafficTarget:
    region: str
    elastic_ip_allocation_id: str | None = None
    target_group_arns: tuple[str, ...] = ()
    route53_record: str | None = None

    @classmethod
    def from_spec(cls, spec: SpotAgentSpec) -> TrafficTarget:
        t = spec.traffic
        return cls(spec.region, t.elastic_ip_allocation_id, tuple(t.target_group_arns), t.route53_record)

    @property
    def configured(self) -> bool:
        return bool(self.elastic_ip_allocation_id or self.target_group_arns or self.route53_record)


@dataclass(frozen=True)
class TrafficMove:
    """How long each part of a move took (None: not configured)."""

    elastic_ip_seconds: float | None = None
    target_groups_seconds: float | None = None
    dns_seconds: float | None = None
    # The longest target-group deregistration delay: the old instance drains this long after the move.
    deregistration_delay_seconds: float | None = None


class Traffic(Protocol):
    async def move(
        self, target: TrafficTarget, to_instance: str, from_instance: str | None
    ) -> TrafficMove: ...

    async def serving(self, region: str, allocation_ids: Sequence[str]) -> dict[str, str | None]:
        """Which instance each Elastic IP points at: one call per region for all agents."""
        ...


# ------------------------------------------------------------------------------------------ Queue


@dataclass(frozen=True)
class QueueMessage:
    receipt: str
    notice: Notice | None  # None: not an event we act on (logged, then deleted)
    detail_type: str = ""
    error: str | None = None


class NoticeQueue(Protocol):
    async def receive(self, wait_seconds: int = 20) -> list[QueueMessage]: ...

    async def delete(self, messages: Sequence[QueueMessage]) -> None: ...


# ------------------------------------------------------------------------------------------ Prices


@dataclass(frozen=True)
class PriceObservation:
    pool: Pool
    at: datetime
    price: float
    product: str = "Linux/UNIX"
    source: str = "aws-api"  # aws-api | agent-primary | agent-replica


class SpotPriceSource(Protocol):
    async def spot_prices(
        self, region: str, instance_types: Sequence[str], since: datetime | None
    ) -> list[PriceObservation]: ...

    async def on_demand_prices(self, region: str, instance_types: Sequence[str]) -> dict[str, float]: ...


# ------------------------------------------------------------------------------------- Price store


@dataclass(frozen=True)
class InterruptionRecord:
    """A notice as history: the risk features and the simulator count these per pool."""

    instance_id: str
    kind: str  # interruption | rebalance | maintenance | stopped
    at: datetime
    pool: Pool | None = None
    source: str = "agent"  # agent | sqs


@dataclass(frozen=True)
class SwitchRecord:
    """One move of an agent's primary; record the first placement too, with ``from_pool=None``.

    ``to_pool.lifecycle`` says spot or on-demand. Recording the same switch again (same agent and
    ``switch`` name) updates it, so it may be recorded when it starts and again when it completes.
    """

    agent: str  # "<namespace>/<name>"
    switch: str  # the SwitchRequest's name
    reason: str
    to_pool: Pool
    started_at: datetime
    from_pool: Pool | None = None
    completed_at: datetime | None = None
    launch_seconds: float | None = None
    cutover_seconds: float | None = None
    downtime_seconds: float | None = None
    pre_state: Mapping[str, object] = field(default_factory=dict)
    post_state: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class DecisionRecord:
    agent: str  # "<namespace>/<name>"
    at: datetime
    model_name: str
    model_version: str
    inputs: Mapping[str, object]
    scores: Mapping[str, object]
    choice: str | None  # the pool chosen, None: stay
    reason: str


@dataclass(frozen=True)
class PricePoint:
    """One 5-minute bucket of the clean series (see ``spot_operator.prices.cleaning``)."""

    at: datetime  # start of the bucket
    price: float
    method: str  # observed | held | averaged (measured); linear | weighted | cross-pool (filled)
    confidence: float


@dataclass(frozen=True)
class SavingsPeriod:
    start: datetime  # an hour or a day, UTC
    cost_usd: float  # what the primary cost, over the priced part of the period
    on_demand_usd: float  # what on-demand would have cost over the same time
    priced_hours: float

    @property
    def saved_usd(self) -> float:
        return self.on_demand_usd - self.cost_usd


@dataclass(frozen=True)
class AgentSavings:
    agent: str
    hourly_usd: float  # saving per hour right now (0 on on-demand or without prices)
    percent: float  # of the on-demand price, right now
    to_date_usd: float
    hourly: tuple[SavingsPeriod, ...] = ()
    daily: tuple[SavingsPeriod, ...] = ()
    unpriced_hours: float = 0.0  # time on spot with no clean price (or no on-demand price) to compare


class PriceStore(Protocol):
    """Price history, interruptions, switches and decisions (PostgreSQL; SQLite in the sandbox).

    ``record_*`` never wait on the database: rows go to a bounded buffer that a background task
    flushes, retrying while the database is away. Reads raise ``errors.StoreUnavailable`` at once when
    it is known to be away; callers degrade (no savings figure, no history) instead of failing.
    """

    async def record_observations(self, observations: Sequence[PriceObservation]) -> None: ...

    async def record_on_demand_prices(self, region: str, prices: Mapping[str, float]) -> None: ...

    async def record_interruption(self, event: InterruptionRecord) -> None: ...

    async def record_switch(self, switch: SwitchRecord) -> None: ...

    async def record_decision(self, decision: DecisionRecord) -> None: ...

    async def savings_for(self, agent: str, now: datetime) -> AgentSavings: ...

    async def recent_prices(
        self, pools: Sequence[Pool], since: datetime
    ) -> dict[Pool, tuple[PricePoint, ...]]:
        """The clean series since ``since``, oldest first; pools without points are absent."""
        ...

    async def latest_prices(self, pools: Sequence[Pool]) -> dict[Pool, float]:
        """The newest clean price of each pool (Linux/UNIX); pools without one are absent."""
        ...


# ---------------------------------------------------------------------------------------- Scoring


@dataclass(frozen=True)
class PoolScore:
    pool: Pool
    risk: float  # probability of an interruption within the horizon
    expected_price: float | None


@dataclass(frozen=True)
class ScoringContext:
    """What the caller knows that a scorer's own history source does not.

    Optional and additive: ``score(pools, now)`` still works. ``instance_age_seconds`` is how long the
    agent's instance has run in a pool (it proves the pool held that long); ``horizon_hours`` asks for
    the probability within another horizon than the scorer's default.
    """

    now: datetime
    horizon_hours: float = 1.0
    instance_age_seconds: Mapping[Pool, float] = field(default_factory=dict)


class Scorer(Protocol):
    """Interruption risk and expected price per pool; fills ``planning.model.Market.quotes[pool].risk``.

    Implementations: ``decisions.rules.RuleScorer``, ``decisions.xgb.XGBoostScorer`` and the
    ``decisions.scorer.ScorerChain`` that falls back from a model to the rules.
    """

    name: str
    version: str

    def score(
        self, pools: Sequence[Pool], now: datetime, context: ScoringContext | None = None
    ) -> dict[Pool, PoolScore]: ...


# -------------------------------------------------------------------------------------- Kubernetes


@dataclass(frozen=True)
class AgentRef:
    namespace: str
    name: str
    uid: str


class Objects(Protocol):
    """The Kubernetes objects the operator writes besides the one a handler was called for."""

    async def create_replica(
        self, agent: AgentRef, name: str, reason: str, pool: str | None
    ) -> ReplicaObject: ...

    async def create_switch(
        self,
        agent: AgentRef,
        name: str,
        target: SwitchTarget,
        reason: SwitchReason,
        priority: int | None,
        message: str,
    ) -> SwitchObject: ...

    async def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, object]) -> None: ...

    async def event(
        self, kind: str, namespace: str, name: str, uid: str, reason: str, message: str, warning: bool
    ) -> None: ...


class Secrets(Protocol):
    """The per-agent token Secret the on-instance agent authenticates with."""

    async def read_secret(self, namespace: str, name: str) -> dict[str, str] | None: ...

    async def create_secret(
        self, agent: AgentRef, name: str, data: dict[str, str], labels: dict[str, str] | None = None
    ) -> None: ...
