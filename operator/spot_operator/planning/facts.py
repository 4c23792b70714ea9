"""Facts derived once per plan from an AgentView, and the builder the sub-planners write into."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from spot_operator.api import ReplicaPhase, ReplicaStatus, SpotAgentSpec, SwitchRequestStatus
from spot_operator.api.switchrequest import SwitchPhase
from spot_operator.planning.actions import Action, Event
from spot_operator.planning.health import is_healthy, is_ready
from spot_operator.planning.model import (
    AgentView,
    Instance,
    InstanceState,
    Market,
    Notice,
    PlannerSettings,
    ReplicaObject,
    Role,
)

COMMITTED_PHASES = frozenset({SwitchPhase.CUTTING_OVER, SwitchPhase.DRAINING})
IN_FLIGHT_PHASES = frozenset({SwitchPhase.LAUNCHING, SwitchPhase.READY, *COMMITTED_PHASES})


def _primary_rank(instance: Instance, serving: str | None) -> tuple[bool, int, bool, datetime, str]:
    return (
        instance.state is InstanceState.RUNNING,
        instance.epoch,
        instance.instance_id == serving,
        instance.launched_at,
        instance.instance_id,
    )


@dataclass(frozen=True)
class Facts:
    view: AgentView
    market: Market
    now: datetime
    settings: PlannerSettings

    @property
    def spec(self) -> SpotAgentSpec:
        return self.view.spec

    @cached_property
    def by_id(self) -> dict[str, Instance]:
        return {i.instance_id: i for i in self.view.instances}

    @cached_property
    def live(self) -> tuple[Instance, ...]:
        return tuple(i for i in self.view.instances if i.live)

    @cached_property
    def primaries(self) -> tuple[Instance, ...]:
        """Live instances tagged primary, the rightful one first."""
        found = [i for i in self.live if i.role is Role.PRIMARY]
        return tuple(sorted(found, key=lambda i: _primary_rank(i, self.view.serving), reverse=True))

    @property
    def primary(self) -> Instance | None:
        return self.primaries[0] if self.primaries else None

    @cached_property
    def max_epoch(self) -> int:
        return max((i.epoch for i in self.view.instances), default=0)

    @property
    def has_traffic(self) -> bool:
        t = self.view.spec.traffic
        return bool(t.elastic_ip_allocation_id or t.target_group_arns or t.route53_record)

    def serves(self, instance: Instance) -> bool:
        return not self.has_traffic or self.view.serving == instance.instance_id

    def healthy(self, instance: Instance) -> bool:
        return is_healthy(instance, self.view.spec, self.now)

    def ready(self, instance: Instance) -> bool:
        return is_ready(instance, self.view.spec, self.now)

    @cached_property
    def _by_purpose(self) -> dict[str, Instance]:
        out: dict[str, Instance] = {}
        for inst in sorted(self.live, key=lambda i: (i.launched_at, i.instance_id)):
            if inst.purpose:
                out[inst.purpose] = inst
        return out

    def instance_for(self, purpose: str) -> Instance | None:
        """The live instance launched for an object ('replica/<name>' or 'switch/<name>')."""
        return self._by_purpose.get(purpose)

    def notices_for(self, instance_id: str) -> list[Notice]:
        return [n for n in self.view.notices if n.instance_id == instance_id]

    def emergency_notice(self, instance_id: str) -> Notice | None:
        found = [n for n in self.notices_for(instance_id) if n.emergency]
        return min(found, key=lambda n: n.received_at) if found else None

    @cached_property
    def replicas_by_name(self) -> dict[str, ReplicaObject]:
        return {r.name: r for r in self.view.replicas}

    def ready_replicas(self, exclude: str | None = None) -> list[tuple[ReplicaObject, Instance]]:
        """Replica objects whose instance is live, ready and not about to be taken away."""
        out = []
        for rep in self.view.replicas:
            if rep.final or rep.deleting:
                continue
            inst = self.instance_for(rep.purpose)
            if inst is None or inst.instance_id == exclude or inst.role is not Role.REPLICA:
                continue
            if self.ready(inst) and self.emergency_notice(inst.instance_id) is None:
                out.append((rep, inst))
        return sorted(out, key=lambda ri: (self.market.risk(ri[1].pool), ri[1].launched_at))

    def volumes_pin_zone(self) -> str | None:
        """Data volumes are zonal: with any, every instance stays in the primary's zone."""
        if not self.view.spec.data_volumes:
            return None
        primary = self.primary
        if primary is not None:
            return primary.pool.zone
        last = self.by_id.get(self.view.last_primary_id or "")
        return last.pool.zone if last else None


@dataclass
class Builder:
    """Accumulates one plan. Refuses a second action for the same key or on an instance already touched."""

    facts: Facts
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    replica_status: dict[str, ReplicaStatus] = field(default_factory=dict)
    switch_status: dict[str, SwitchRequestStatus] = field(default_factory=dict)
    requeue_after: float | None = None
    _keys: set[str] = field(default_factory=set)
    _touched: set[str] = field(default_factory=set)

    def emit(self, action: Action, instances: tuple[str | None, ...] = ()) -> bool:
        if action.key in self._keys or any(i in self._touched for i in instances if i):
            return False
        self._keys.add(action.key)
        self._touched.update(i for i in instances if i)
        self.actions.append(action)
        return True

    def touched(self, instance_id: str | None) -> bool:
        return instance_id is not None and instance_id in self._touched

    def event(self, reason: str, message: str, obj: str = "SpotAgent", warning: bool = False) -> None:
        self.events.append(Event(reason, message, obj, warning))

    def requeue(self, seconds: float) -> None:
        seconds = max(seconds, 0.5)
        self.requeue_after = seconds if self.requeue_after is None else min(self.requeue_after, seconds)

    def replica_phase(self, rep: ReplicaObject) -> ReplicaPhase | None:
        written = self.replica_status.get(rep.name)
        return written.phase if written else rep.phase
