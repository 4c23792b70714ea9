"""Pieces shared by the three custom resources: the base model, patterns and conditions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "spotoptimizer.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Patterns are anchored; Kubernetes evaluates them with RE2, so no look-arounds.
REGION_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$"
ZONE_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+(-[a-z]+-[0-9]+)?[a-z]$"
INSTANCE_TYPE_PATTERN = r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$"
# A pool is "<instance type>.<zone>", e.g. m5.large.us-east-1a.
POOL_PATTERN = (
    r"^[a-z][a-z0-9-]*\.[a-z0-9-]+\.[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+(-[a-z]+-[0-9]+)?[a-z]$"
)
DNS_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
INSTANCE_ID_PATTERN = r"^i-[0-9a-f]{8,17}$"

ResourceName = Annotated[
    str,
    Field(min_length=1, max_length=253, pattern=DNS_NAME_PATTERN),
]
InstanceId = Annotated[str, Field(pattern=INSTANCE_ID_PATTERN, description="An EC2 instance id.")]
PoolName = Annotated[
    str,
    Field(
        pattern=POOL_PATTERN,
        max_length=128,
        description="A capacity pool: '<instance type>.<availability zone>', e.g. m5.large.us-east-1a.",
    ),
]


class Model(BaseModel):
    """Base for every custom-resource model: camelCase on the wire, immutable, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="forbid",
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict Kubernetes stores (camelCase, no nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(Model):
    """Status is written by the operator; tolerate fields written by newer versions."""

    model_config = ConfigDict(extra="ignore")


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """A Kubernetes-style condition: one facet of the observed state, with why and since when."""

    type: str = Field(description="The facet, e.g. Ready, PrimaryHealthy, ReplicaReady, InterruptionPending.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        default="",
        max_length=128,
        description="A CamelCase machine-readable reason for the last transition.",
    )
    message: str = Field(default="", max_length=4096, description="A human-readable explanation.")
    last_transition_time: datetime | None = Field(
        default=None, description="When status last changed (RFC 3339)."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this condition was computed for."
    )


class ObjectRef(Model):
    """A reference to a SpotAgent in the same namespace."""

    name: ResourceName = Field(description="Name of the SpotAgent in the same namespace.")
