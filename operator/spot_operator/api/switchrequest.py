"""SwitchRequest: one move of a SpotAgent's primary, executed as a resumable phase machine."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator

from spot_operator.api.common import (
    Condition,
    Model,
    ObjectRef,
    PoolName,
    ResourceName,
    StatusModel,
)


class TargetKind(StrEnum):
    POOL = "pool"
    ON_DEMAND = "on-demand"
    CHEAPEST = "cheapest"
    REPLICA = "replica"


class SwitchReason(StrEnum):
    MANUAL = "manual"
    DECISION = "decision"
    EMERGENCY = "emergency"
    DRIFT = "drift"


DEFAULT_PRIORITY: dict[SwitchReason, int] = {
    SwitchReason.EMERGENCY: 100,
    SwitchReason.MANUAL: 75,
    SwitchReason.DRIFT: 60,
    SwitchReason.DECISION: 50,
}


class SwitchPhase(StrEnum):
    PENDING = "Pending"
    LAUNCHING = "Launching"
    READY = "Ready"
    CUTTING_OVER = "CuttingOver"
    DRAINING = "Draining"
    COMPLETED = "Completed"
    FAILED = "Failed"
    SUPERSEDED = "Superseded"


SWITCH_FINAL_PHASES = frozenset({SwitchPhase.COMPLETED, SwitchPhase.FAILED, SwitchPhase.SUPERSEDED})


class SwitchTarget(Model):
    """Where the primary goes."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.kind != 'pool' || has(self.pool)",
                    "message": "target.pool is required when target.kind is pool",
                    "fieldPath": ".pool",
                },
                {
                    "rule": "self.kind != 'replica' || has(self.replicaRef)",
                    "message": "target.replicaRef is required when target.kind is replica",
                    "fieldPath": ".replicaRef",
                },
                {
                    "rule": "self.kind == 'replica' || !has(self.replicaRef)",
                    "message": "target.replicaRef is only allowed when target.kind is replica",
                    "fieldPath": ".replicaRef",
                },
                {
                    "rule": "!(self.kind in ['cheapest', 'replica']) || !has(self.pool)",
                    "message": "target.pool is not allowed for kind cheapest or replica",
                    "fieldPath": ".pool",
                },
            ]
        }
    }

    kind: TargetKind = Field(
        description="pool: a named spot pool; on-demand: on-demand capacity (pool optional); cheapest: the "
        "planner's best spot pool; replica: promote an existing Replica."
    )
    pool: PoolName | None = Field(
        default=None, description="For kind pool (required) and on-demand (optional)."
    )
    replica_ref: ResourceName | None = Field(
        default=None, description="For kind replica: the Replica's name."
    )

    @model_validator(mode="after")
    def _check(self) -> SwitchTarget:
        if self.kind is TargetKind.POOL and self.pool is None:
            raise ValueError("target.pool is required when target.kind is pool")
        if self.kind is TargetKind.REPLICA and self.replica_ref is None:
            raise ValueError("target.replicaRef is required when target.kind is replica")
        if self.kind is not TargetKind.REPLICA and self.replica_ref is not None:
            raise ValueError("target.replicaRef is only allowed when target.kind is replica")
        if self.kind in (TargetKind.CHEAPEST, TargetKind.REPLICA) and self.pool is not None:
            raise ValueError("target.pool is not allowed for kind cheapest or replica")
        return self


class SwitchRequestSpec(Model):
    """One move of the primary; immutable once created."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "spec is immutable"}]
        }
    }

    agent_ref: ObjectRef = Field(description="The SpotAgent whose primary moves.")
    target: SwitchTarget = Field(description="Where the primary goes.")
    reason: SwitchReason = Field(default=SwitchReason.MANUAL, description="Why it moves.")
    priority: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Higher wins when switches compete; default by reason: emergency 100, manual 75, "
        "drift 60, decision 50.",
    )

    @property
    def effective_priority(self) -> int:
        return self.priority if self.priority is not None else DEFAULT_PRIORITY[self.reason]


class SwitchTimings(StatusModel):
    launch_seconds: float | None = Field(default=None, description="Launch call to the new instance healthy.")
    cutover_seconds: float | None = Field(default=None, description="Time spent moving traffic.")
    downtime_seconds: float | None = Field(default=None, description="Time with no healthy instance serving.")


class SwitchRequestStatus(StatusModel):
    phase: SwitchPhase = Field(default=SwitchPhase.PENDING)
    new_instance_id: str | None = None
    old_instance_id: str | None = None
    new_pool: str | None = None
    old_pool: str | None = None
    started_at: datetime | None = None
    launched_at: datetime | None = None
    ready_at: datetime | None = None
    cutover_at: datetime | None = None
    completed_at: datetime | None = None
    timings: SwitchTimings | None = None
    message: str = ""
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None


class SwitchRequest(Model):
    model_config = {"extra": "ignore"}

    api_version: Literal["spotoptimizer.io/v1alpha1"] = "spotoptimizer.io/v1alpha1"
    kind: Literal["SwitchRequest"] = "SwitchRequest"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: SwitchRequestSpec
    status: SwitchRequestStatus | None = None
