"""Small builders for decision-policy inputs: an auto-switch agent with a healthy primary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from spot_operator.api import Capacity, SpotAgentSpec
from spot_operator.planning.model import (
    AgentView,
    Instance,
    InstanceState,
    Market,
    Pool,
    PoolQuote,
    Role,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EIP = "eipalloc-0123456789abcdef0"
A = "m5.large.us-east-1a"
B = "m5.large.us-east-1b"
C = "m5.large.us-east-1c"
ON_DEMAND = {"m5.large": 0.10}


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def spec(**overrides: Any) -> SpotAgentSpec:
    base: dict[str, Any] = {
        "region": "us-east-1",
        "image": "ami-0123456789abcdef0",
        "instanceTypes": ["m5.large"],
        "zones": ["us-east-1a", "us-east-1b", "us-east-1c"],
        "mode": "auto-switch",
        "traffic": {"elasticIpAllocationId": EIP},
        "policy": {"minSavingsPercent": 10, "cooldownSeconds": 1800},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return SpotAgentSpec.model_validate(base)


def market(
    prices: dict[str, float],
    risks: dict[str, float] | None = None,
    unavailable: tuple[str, ...] = (),
    on_demand: dict[str, float] | None = None,
) -> Market:
    risks = risks or {}
    quotes = {Pool.parse(n): PoolQuote(Pool.parse(n), p, risks.get(n, 0.01)) for n, p in prices.items()}
    return Market(
        quotes,
        dict(ON_DEMAND if on_demand is None else on_demand),
        frozenset(Pool.parse(n) for n in unavailable),
    )


def primary(
    pool: str = A,
    age: float = 7200,
    healthy: bool = True,
    on_demand: bool = False,
    instance_id: str = "i-0000000000000000p",
    state: InstanceState = InstanceState.RUNNING,
) -> Instance:
    return Instance(
        instance_id=instance_id,
        pool=Pool.parse(pool, Capacity.ON_DEMAND if on_demand else Capacity.SPOT),
        role=Role.PRIMARY,
        state=state,
        launched_at=ago(age),
        launch_key="primary/1",
        epoch=1,
        last_heartbeat=ago(5) if healthy else None,
    )


def view(
    agent_spec: SpotAgentSpec | None = None, current: Instance | None = None, **fields: Any
) -> AgentView:
    inst = current or primary()
    fields.setdefault("instances", (inst,))
    fields.setdefault("serving", inst.instance_id)
    return AgentView(namespace="default", name="web", uid="uid-web", spec=agent_spec or spec(), **fields)
