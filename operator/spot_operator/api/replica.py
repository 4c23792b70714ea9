"""Replica: a standby instance owned by a SpotAgent."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from spot_operator.api.common import Condition, Model, ObjectRef, PoolName, StatusModel


class ReplicaReason(StrEnum):
    MANUAL = "manual"
    REBALANCE = "rebalance"
    TERMINATION = "termination"


class ReplicaPhase(StrEnum):
    LAUNCHING = "Launching"
    SYNCING = "Syncing"
    READY = "Ready"
    PROMOTED = "Promoted"
    TERMINATED = "Terminated"
    FAILED = "Failed"


REPLICA_FINAL_PHASES = frozenset({ReplicaPhase.PROMOTED, ReplicaPhase.TERMINATED, ReplicaPhase.FAILED})


class ReplicaSpec(Model):
    """Desired state of one standby instance."""

    agent_ref: ObjectRef = Field(description="The SpotAgent this replica stands by for.")
    pool: PoolName | None = Field(
        default=None,
        description="Where to run it; empty lets the planner pick a pool other than the primary's.",
    )
    reason: ReplicaReason = Field(default=ReplicaReason.MANUAL, description="Why it exists.")


class ReplicaStatus(StatusModel):
    phase: ReplicaPhase = Field(default=ReplicaPhase.LAUNCHING)
    instance_id: str | None = None
    pool: str | None = None
    sync_progress: int = Field(
        default=0, ge=0, le=100, description="Percent of state copied, from the agent."
    )
    ready_at: datetime | None = None
    message: str = ""
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None


class Replica(Model):
    model_config = {"extra": "ignore"}

    api_version: Literal["spotoptimizer.io/v1alpha1"] = "spotoptimizer.io/v1alpha1"
    kind: Literal["Replica"] = "Replica"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ReplicaSpec
    status: ReplicaStatus | None = None
