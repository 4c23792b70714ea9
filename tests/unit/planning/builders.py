"""Small builders for planner inputs, so each test states only what matters to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from spot_operator.api import (
    ReplicaPhase,
    ReplicaReason,
    SpotAgentSpec,
    SwitchReason,
    SwitchRequestSpec,
    SwitchRequestStatus,
    SwitchTarget,
)
from spot_operator.api.common import ObjectRef
from spot_operator.planning import (
    AgentView,
    Instance,
    InstanceState,
    Market,
    Notice,
    NoticeKind,
    Plan,
    Pool,
    PoolQuote,
    ReplicaObject,
    Role,
    SwitchObject,
    plan,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EIP = "eipalloc-0123456789abcdef0"
PRICES = {
    "m5.large.us-east-1a": 0.040,
    "m5.large.us-east-1b": 0.035,
    "m5a.large.us-east-1a": 0.030,
    "m5a.large.us-east-1b": 0.045,
}
ON_DEMAND = {"m5.large": 0.096, "m5a.large": 0.086}


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def spec(**overrides: Any) -> SpotAgentSpec:
    base: dict[str, Any] = {
        "region": "us-east-1",
        "launchTemplate": {"name": "web"},
        "instanceTypes": ["m5.large", "m5a.large"],
        "zones": ["us-east-1a", "us-east-1b"],
        "mode": "auto-switch",
        "traffic": {"elasticIpAllocationId": EIP},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return SpotAgentSpec.model_validate(base)


def market(unavailable: tuple[str, ...] = (), risks: dict[str, float] | None = None) -> Market:
    risks = risks or {}
    quotes = {Pool.parse(n): PoolQuote(Pool.parse(n), p, risks.get(n, 0.05)) for n, p in PRICES.items()}
    return Market(quotes, ON_DEMAND, frozenset(Pool.parse(n) for n in unavailable))


def inst(
    instance_id: str,
    pool: str = "m5a.large.us-east-1a",
    role: Role = Role.PRIMARY,
    state: InstanceState = InstanceState.RUNNING,
    epoch: int = 1,
    healthy: bool = True,
    purpose: str = "",
    age: float = 3600,
    on_demand: bool = False,
    sync: int = 100,
) -> Instance:
    from spot_operator.api import Capacity

    return Instance(
        instance_id=instance_id,
        pool=Pool.parse(pool, Capacity.ON_DEMAND if on_demand else Capacity.SPOT),
        role=role,
        state=state,
        launched_at=ago(age),
        launch_key=purpose or f"primary/{epoch}",
        purpose=purpose,
        epoch=epoch if role is Role.PRIMARY else 0,
        last_heartbeat=ago(5) if healthy else None,
        sync_progress=sync,
    )


def replica(
    name: str,
    phase: ReplicaPhase | None = None,
    reason: ReplicaReason = ReplicaReason.MANUAL,
    managed: bool = True,
    pool: str | None = None,
    instance_id: str | None = None,
    age: float = 600,
) -> ReplicaObject:
    return ReplicaObject(
        name=name,
        uid=f"uid-{name}",
        reason=reason,
        created_at=ago(age),
        pool=pool,
        phase=phase,
        instance_id=instance_id,
        managed=managed,
    )


def switch(
    name: str,
    target: dict[str, Any],
    reason: SwitchReason = SwitchReason.MANUAL,
    priority: int | None = None,
    status: dict[str, Any] | None = None,
    age: float = 10,
    managed: bool = False,
) -> SwitchObject:
    sw_spec = SwitchRequestSpec(
        agent_ref=ObjectRef(name="web"),
        target=SwitchTarget.model_validate(target),
        reason=reason,
        priority=priority,
    )
    return SwitchObject(
        name=name,
        uid=f"uid-{name}",
        spec=sw_spec,
        created_at=ago(age),
        status=SwitchRequestStatus.model_validate(status or {}),
        managed=managed,
    )


def notice(instance_id: str, kind: NoticeKind = NoticeKind.INTERRUPTION, source: str = "agent") -> Notice:
    deadline = later(120) if kind is NoticeKind.INTERRUPTION else None
    return Notice(instance_id, kind, NOW, deadline, source)


def view(agent_spec: SpotAgentSpec | None = None, **fields: Any) -> AgentView:
    return AgentView(namespace="default", name="web", uid="uid-web", spec=agent_spec or spec(), **fields)


def run(v: AgentView, m: Market | None = None, now: datetime = NOW) -> Plan:
    return plan(v, m or market(), now)


def of(p: Plan, kind: type) -> list[Any]:
    return [a for a in p.actions if isinstance(a, kind)]
