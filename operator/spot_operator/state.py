"""What the operator holds in memory between observations: one AgentState per SpotAgent.

The failover path plans from this state and never describes EC2: the periodic observe cycle refreshes
it (one DescribeInstances per region for all agents), and every actuation updates it with what the
call returned.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from spot_operator.api import ReplicaStatus, SpotAgentSpec, SpotAgentStatus
from spot_operator.api.spotagent import PendingNotice
from spot_operator.planning.model import (
    AgentView,
    Instance,
    InstanceState,
    LaunchFailure,
    Notice,
    NoticeKind,
    Pool,
    ReplicaObject,
    SwitchObject,
)
from spot_operator.ports import AgentRef, LaunchSpec, TrafficTarget

CAPACITY_BACKOFF_SECONDS = 180.0  # as Karpenter: a pool that refused capacity is skipped for 3 minutes

# How long an answered notice is remembered: a copy arriving later (SQS re-delivers for up to the
# queue's retention; the agent and EventBridge race) is a duplicate, not a new notice.
HANDLED_NOTICE_MEMORY = timedelta(hours=6)

# Notices by (instance, kind), the way duplicates are recognised.
NoticeKeys = frozenset[tuple[str, NoticeKind]]

# How far along its life an instance is: a stale observation never moves one back.
_STATE_ORDER = {
    InstanceState.PENDING: 0,
    InstanceState.RUNNING: 1,
    InstanceState.STOPPING: 2,
    InstanceState.STOPPED: 3,
    InstanceState.SHUTTING_DOWN: 4,
    InstanceState.TERMINATED: 5,
}


def client_token(owner: str, key: str, attempt: int) -> str:
    """The AWS ClientToken for one step: same step and attempt, same token (max 64 ASCII chars)."""
    digest = hashlib.sha256(f"{owner}\0{key}\0{attempt}".encode()).hexdigest()
    return f"so-{digest[:48]}"


@dataclass(frozen=True)
class Heartbeat:
    at: datetime
    sync_progress: int = 100
    healthy: bool = True


class UnavailablePools:
    """Pools that recently refused capacity, shared by every agent in the process."""

    def __init__(self, ttl_seconds: float = CAPACITY_BACKOFF_SECONDS) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)
        self._until: dict[Pool, datetime] = {}

    def mark(self, pools: tuple[Pool, ...] | list[Pool], now: datetime) -> None:
        for pool in pools:
            self._until[pool] = now + self.ttl

    def clear(self) -> None:
        self._until.clear()

    def current(self, now: datetime) -> frozenset[Pool]:
        expired = [p for p, until in self._until.items() if until <= now]
        for pool in expired:
            del self._until[pool]
        return frozenset(self._until)


@dataclass
class AgentState:
    ref: AgentRef
    spec: SpotAgentSpec
    generation: int = 1
    created_at: datetime | None = None
    instances: dict[str, Instance] = field(default_factory=dict)
    serving: str | None = None
    replicas: dict[str, ReplicaObject] = field(default_factory=dict)
    replica_status: dict[str, ReplicaStatus] = field(default_factory=dict)
    switches: dict[str, SwitchObject] = field(default_factory=dict)
    notices: dict[tuple[str, NoticeKind], Notice] = field(default_factory=dict)
    handled_notices: dict[tuple[str, NoticeKind], datetime] = field(default_factory=dict)
    # Notices accepted since the last status write: a crash now would lose them, so they are not
    # acknowledged (202 to the agent, SQS delete) until a write holds them or their outcome.
    unwritten_notices: set[tuple[str, NoticeKind]] = field(default_factory=set)
    launch_failures: dict[str, LaunchFailure] = field(default_factory=dict)
    heartbeats: dict[str, Heartbeat] = field(default_factory=dict)
    status: SpotAgentStatus = field(default_factory=SpotAgentStatus)
    last_primary_id: str | None = None
    last_switch_at: datetime | None = None
    volumes_attached_to: str | None = None
    deleting: bool = False
    # When EC2 was last described for this agent. Until then nothing is planned: after a restart, the
    # instances an earlier process launched (a switch's new instance, a replica) are not known yet.
    observed_at: datetime | None = None
    # When an action of ours last changed something in AWS. A describe that started before it may show
    # what our action just changed (a role tag, a moved address) as it was: see ``observe``.
    changed_at: datetime | None = None
    # Where a traffic move that failed was going: it may have moved the Elastic IP and not the target
    # groups (or DNS), which no observation shows. Until a move succeeds, the EIP is not the whole truth.
    traffic_unconfirmed: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def key(self) -> str:
        return f"{self.ref.namespace}/{self.ref.name}"

    @property
    def launch_spec(self) -> LaunchSpec:
        return LaunchSpec.from_spec(self.spec)

    @property
    def traffic(self) -> TrafficTarget:
        return TrafficTarget.from_spec(self.spec)

    def observed_serving(self, elastic_ip_points_at: str | None) -> str | None:
        """What serves traffic after an observation of the Elastic IP (None: unknown, move it again)."""
        target = self.traffic
        if self.traffic_unconfirmed is not None and (target.target_group_arns or target.route53_record):
            return None
        return elastic_ip_points_at

    def add_notice(self, notice: Notice, written: bool = False) -> bool:
        """Record a notice; False when the same (instance, kind) is pending or was handled within
        ``HANDLED_NOTICE_MEMORY`` (a duplicate: SQS re-delivers, the agent and EventBridge both report).
        ``written``: it comes from the stored status (a restart), not from a sender waiting for an answer."""
        key = (notice.instance_id, notice.kind)
        horizon = notice.received_at - HANDLED_NOTICE_MEMORY
        for old in [k for k, at in self.handled_notices.items() if at < horizon]:
            del self.handled_notices[old]
        if key in self.notices or key in self.handled_notices:
            return False
        self.notices[key] = notice
        if not written:
            self.unwritten_notices.add(key)
        return True

    def notices_in(self, status: SpotAgentStatus) -> NoticeKeys:
        """The notices a crash cannot lose once ``status`` is written: those it holds as pending, and
        those handled before it was made (it holds their outcome). Take it before the write starts."""
        pending = {(n.instance_id, NoticeKind(n.kind)) for n in status.pending_notices}
        return frozenset(pending | self.handled_notices.keys())

    def notices_written(self, keys: NoticeKeys) -> None:
        """A status write holding these notices (or their outcome) succeeded."""
        self.unwritten_notices -= keys

    def pending_notices(self) -> list[PendingNotice]:
        """The notices not answered yet, as the status records them."""
        return [
            PendingNotice(
                instance_id=n.instance_id,
                kind=n.kind.value,
                received_at=n.received_at,
                deadline=n.deadline,
                source=n.source,
            )
            for n in self.notices.values()
        ]

    def notice_written(self, instance_id: str, kind: NoticeKind) -> bool:
        """True once a crash can no longer lose this notice (answer the sender then, not before)."""
        return (instance_id, kind) not in self.unwritten_notices

    def forget_notice(self, notice: Notice, now: datetime) -> None:
        """The notice is answered (or moot): drop it, and remember it so a late copy is a duplicate."""
        key = (notice.instance_id, notice.kind)
        self.notices.pop(key, None)
        self.handled_notices[key] = now

    def view(self) -> AgentView:
        instances = []
        for inst in self.instances.values():
            beat = self.heartbeats.get(inst.instance_id)
            if beat is not None and beat.healthy:
                inst = replace(inst, last_heartbeat=beat.at, sync_progress=beat.sync_progress)
                if inst.state is InstanceState.PENDING and beat.at >= inst.launched_at:
                    # Its agent speaks from it: it runs, whether or not a describe has shown that yet
                    # (a replacement is not kept waiting for the next observe cycle).
                    inst = replace(inst, state=InstanceState.RUNNING)
            instances.append(inst)
        return AgentView(
            namespace=self.ref.namespace,
            name=self.ref.name,
            uid=self.ref.uid,
            spec=self.spec,
            generation=self.generation,
            instances=tuple(sorted(instances, key=lambda i: i.instance_id)),
            serving=self.serving,
            replicas=tuple(self.replicas.values()),
            switches=tuple(self.switches.values()),
            notices=tuple(self.notices.values()),
            launch_failures=dict(self.launch_failures),
            last_switch_at=self.last_switch_at,
            last_primary_id=self.last_primary_id,
            deleting=self.deleting,
            created_at=self.created_at,
            volumes_attached_to=self.volumes_attached_to,
            status=self.status,
        )

    def observe(self, instances: list[Instance], now: datetime, grace_seconds: float = 120.0) -> bool:
        """Replace what we know of our instances with a fresh observation, made from ``now`` on.

        A describe that started just before a launch may miss the new instance (EC2 is eventually
        consistent): instances we launched within ``grace_seconds`` and that the describe lacks are kept.
        A describe that started before our last action (``changed_at``) may show our own changes undone:
        then the roles and epochs we wrote are kept, and an instance's state only moves forward.
        Returns whether the observation was that stale (the caller keeps its traffic view too).
        """
        stale = self.changed_at is not None and self.changed_at >= now
        fresh = {i.instance_id: i for i in instances}
        for instance_id, known in self.instances.items():
            seen = fresh.get(instance_id)
            if seen is None:
                recent = (now - known.launched_at).total_seconds() < grace_seconds
                if known.live and recent:
                    fresh[instance_id] = known
            elif stale:
                later = _STATE_ORDER[known.state] > _STATE_ORDER[seen.state]
                fresh[instance_id] = replace(
                    seen, role=known.role, epoch=known.epoch, state=known.state if later else seen.state
                )
        self.instances = fresh
        self.observed_at = now
        return stale
