"""SpotAgent: one managed workload and the single primary instance that runs it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from spot_operator.api.common import (
    INSTANCE_TYPE_PATTERN,
    REGION_PATTERN,
    ZONE_PATTERN,
    Condition,
    Model,
    StatusModel,
)

InstanceType = Annotated[str, Field(pattern=INSTANCE_TYPE_PATTERN, max_length=64)]
Zone = Annotated[str, Field(pattern=ZONE_PATTERN, max_length=32)]
SecurityGroupId = Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")]
SubnetId = Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]
TargetGroupArn = Annotated[
    str,
    Field(
        pattern=r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:targetgroup/.+$", max_length=512
    ),
]


class Mode(StrEnum):
    """One switch for what the operator may do on its own; emergencies act in every mode."""

    AUTO_SWITCH = "auto-switch"
    MANUAL_REPLICA = "manual-replica"
    OFF = "off"


class Capacity(StrEnum):
    SPOT = "spot"
    ON_DEMAND = "on-demand"


class RebalanceAction(StrEnum):
    """What auto-switch does once the replica launched for a rebalance recommendation is Ready."""

    REPLACE = "replace"
    STANDBY = "standby"


class LaunchTemplateRef(Model):
    """An EC2 launch template, by id or by name."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.id) != has(self.name)",
                    "message": "launchTemplate: set exactly one of id or name",
                    "fieldPath": ".id",
                }
            ]
        }
    }

    id: str | None = Field(default=None, pattern=r"^lt-[0-9a-f]{8,17}$", description="Launch template id.")
    name: str | None = Field(default=None, min_length=3, max_length=128, description="Launch template name.")
    version: str = Field(
        default="$Default",
        pattern=r"^(\$Default|\$Latest|[0-9]+)$",
        description="A version number, $Default or $Latest.",
    )

    @model_validator(mode="after")
    def _one_of_id_or_name(self) -> LaunchTemplateRef:
        if (self.id is None) == (self.name is None):
            raise ValueError("launchTemplate: set exactly one of id or name")
        return self


class Traffic(Model):
    """Where clients reach the workload; moved to the new primary on every switch."""

    elastic_ip_allocation_id: str | None = Field(
        default=None,
        pattern=r"^eipalloc-[0-9a-f]{8,17}$",
        description="An Elastic IP that always points at the primary. "
        "It stays allocated when the agent is deleted.",
    )
    target_group_arns: list[TargetGroupArn] = Field(
        default_factory=list,
        max_length=5,
        description="ELBv2 target groups the primary is registered in.",
    )
    route53_record: str | None = Field(
        default=None,
        max_length=253,
        description="Optional DNS name (A record) UPSERTed to the primary's public IP, 'zoneId/name'.",
        pattern=r"^Z[A-Z0-9]{1,32}/[A-Za-z0-9.*_-]+$",
    )


class Termination(Model):
    auto_terminate: bool = Field(
        default=True,
        description="Terminate a replaced primary after the drain wait; false leaves it running, "
        "tagged role=retiring, for you to inspect.",
    )
    terminate_wait_seconds: int = Field(
        default=30, ge=0, le=3600, description="Drain time between cutover and terminating the old primary."
    )


class Policy(Model):
    min_savings_percent: float = Field(
        default=10.0,
        ge=0,
        le=100,
        description="A decision switch must save at least this share of the price.",
    )
    max_interruption_risk: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Pools whose interruption probability within the horizon exceeds this are not chosen.",
    )
    cooldown_seconds: int = Field(
        default=1800, ge=0, le=7 * 24 * 3600, description="Minimum time between two decision switches."
    )
    on_demand_fallback: bool = Field(
        default=True,
        description="On an interruption without a Ready replica, launch the replacement on on-demand "
        "first (the decision loop moves it back to spot when a pool is safe); false: another spot pool "
        "first, on-demand only when no spot pool has capacity.",
    )
    rebalance_action: RebalanceAction = Field(
        default=RebalanceAction.REPLACE,
        description="auto-switch on a rebalance recommendation: 'replace' moves to the new replica "
        "once Ready "
        "(as EC2 Capacity Rebalancing does); 'standby' keeps it until the interruption notice.",
    )
    downtime_cost_per_hour: float = Field(
        default=0.0,
        ge=0,
        le=1_000_000,
        description="What an hour of downtime costs you (USD); weighs risk against price in decisions.",
    )


class AgentSettings(Model):
    enabled: bool = Field(
        default=True,
        description="An on-instance spot-agent reports heartbeats; a new instance counts as healthy "
        "only after "
        "its first heartbeat. False: running is healthy.",
    )
    heartbeat_timeout_seconds: int = Field(
        default=90,
        ge=10,
        le=3600,
        description="Missing heartbeats for this long mark the instance unhealthy.",
    )


class DataVolume(Model):
    volume_id: str = Field(
        pattern=r"^vol-[0-9a-f]{8,17}$", description="An EBS volume that moves with the primary."
    )
    device_name: str = Field(pattern=r"^/dev/[a-z0-9]+$", description="Where it is attached, e.g. /dev/sdf.")


class SpotAgentSpec(Model):
    """Desired state of one managed workload."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.launchTemplate) != has(self.image)",
                    "message": "set exactly one of launchTemplate or image",
                    "fieldPath": ".launchTemplate",
                },
                {
                    "rule": "!has(self.zones) || self.zones.all(z, z.startsWith(self.region))",
                    "message": "zones must be in the region",
                    "fieldPath": ".zones",
                },
            ]
        }
    }

    region: str = Field(pattern=REGION_PATTERN, max_length=32, description="AWS region, e.g. us-east-1.")
    launch_template: LaunchTemplateRef | None = Field(
        default=None, description="Launch template for every instance (exclusive with image)."
    )
    image: str | None = Field(
        default=None,
        pattern=r"^ami-[0-9a-f]{8,17}$",
        description="AMI id when no launch template is used (exclusive with launchTemplate).",
    )
    instance_profile: str | None = Field(
        default=None, max_length=256, description="IAM instance profile name or ARN (with image)."
    )
    security_groups: list[SecurityGroupId] = Field(
        default_factory=list, max_length=16, description="Security group ids (with image)."
    )
    subnets: dict[Zone, SubnetId] = Field(
        default_factory=dict,
        max_length=32,
        description="Subnet id per availability zone; zones without an entry use the default subnet.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self.all(z, z.matches('{ZONE_PATTERN}'))",
                    "message": "subnets: keys must be availability zones, e.g. us-east-1a",
                }
            ]
        },
    )
    user_data: str | None = Field(
        default=None, max_length=16384, description="User data (plain text, base64-encoded on launch)."
    )
    instance_types: list[InstanceType] = Field(
        min_length=1,
        max_length=50,
        description="Candidate instance types, all able to run the workload.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    zones: list[Zone] = Field(
        default_factory=list,
        max_length=16,
        description="Candidate availability zones; empty means every zone of the region with a subnet.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    capacity: Capacity = Field(default=Capacity.SPOT, description="Preferred lifecycle of the primary.")
    mode: Mode = Field(
        default=Mode.AUTO_SWITCH,
        description="auto-switch: decisions move the primary to cheaper pools, a replica only on a rebalance "
        "recommendation. manual-replica: one hot standby always kept, a person promotes it. off: keep "
        "one primary alive, nothing else. Emergencies act in every mode.",
    )
    traffic: Traffic = Field(default_factory=Traffic, description="Where clients reach the primary.")
    termination: Termination = Field(default_factory=Termination, description="How replaced instances end.")
    policy: Policy = Field(default_factory=Policy, description="When decisions may switch.")
    agent: AgentSettings = Field(default_factory=AgentSettings, description="The on-instance agent.")
    data_volumes: list[DataVolume] = Field(
        default_factory=list,
        max_length=8,
        description="EBS volumes moved from the old primary to the new one at cutover (same zone only).",
    )
    paused: bool = Field(
        default=False, description="Stop decisions and planned switches; emergencies still act."
    )

    @model_validator(mode="after")
    def _check(self) -> SpotAgentSpec:
        if (self.launch_template is None) == (self.image is None):
            raise ValueError("set exactly one of launchTemplate or image")
        for zone in self.zones:
            if not zone.startswith(self.region):
                raise ValueError(f"zones: {zone} is not in region {self.region}")
        if len(set(self.instance_types)) != len(self.instance_types):
            raise ValueError("instanceTypes: duplicate entries")
        return self


class SpotAgentPhase(StrEnum):
    PENDING = "Pending"
    LAUNCHING = "Launching"
    READY = "Ready"
    SWITCHING = "Switching"
    FAILING_OVER = "FailingOver"
    DEGRADED = "Degraded"
    PAUSED = "Paused"
    DELETING = "Deleting"


class PrimaryStatus(StatusModel):
    instance_id: str = Field(description="The primary instance.")
    pool: str = Field(description="Its pool, '<type>.<zone>'.")
    lifecycle: Capacity = Field(description="spot or on-demand.")
    hourly_price: float | None = Field(default=None, description="Current hourly price in USD.")
    since: datetime | None = Field(default=None, description="When it became primary.")


class ReplicaSummary(StatusModel):
    name: str
    instance_id: str | None = None
    pool: str | None = None
    phase: str


class Savings(StatusModel):
    hourly_usd: float = Field(default=0.0, description="Saved per hour now, against on-demand.")
    to_date_usd: float = Field(default=0.0, description="Saved since the agent was created.")
    percent: float = Field(default=0.0, description="Current saving as a share of the on-demand price.")


class LastSwitch(StatusModel):
    name: str = Field(description="The SwitchRequest that recorded it.")
    reason: str
    from_pool: str | None = None
    to_pool: str | None = None
    completed_at: datetime | None = None
    downtime_seconds: float | None = None


class PendingNotice(StatusModel):
    """A notice not yet fully handled, kept so a restarted operator picks it up again."""

    instance_id: str
    kind: str = Field(description="interruption, rebalance, maintenance or stopped.")
    received_at: datetime
    deadline: datetime | None = None
    source: str = Field(default="agent", description="agent or sqs.")


class SpotAgentStatus(StatusModel):
    phase: SpotAgentPhase = Field(default=SpotAgentPhase.PENDING)
    primary: PrimaryStatus | None = None
    replicas: list[ReplicaSummary] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    savings: Savings | None = None
    last_switch: LastSwitch | None = None
    pending_notices: list[PendingNotice] = Field(default_factory=list)
    observed_generation: int | None = None


class SpotAgent(Model):
    model_config = {"extra": "ignore"}

    api_version: Literal["spotoptimizer.io/v1alpha1"] = "spotoptimizer.io/v1alpha1"
    kind: Literal["SpotAgent"] = "SpotAgent"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: SpotAgentSpec
    status: SpotAgentStatus | None = None
