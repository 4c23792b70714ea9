"""Pure translation between EC2 instance descriptions and the operator's instances, and the launch requests.

No I/O here: :mod:`spot_operator.adapters.aws.ec2` makes the calls, these functions build their parameters
and read their answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from spot_operator import tags
from spot_operator.adapters.aws.errors import CAPACITY_CODES
from spot_operator.api import Capacity
from spot_operator.planning.model import Instance, InstanceState, Pool, Role
from spot_operator.ports import LaunchRequest, ObservedInstance

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import (
        CreateFleetRequestTypeDef,
        FleetLaunchTemplateOverridesRequestTypeDef,
        InstanceTypeDef,
        RunInstancesRequestTypeDef,
        TagSpecificationTypeDef,
        TagTypeDef,
    )

# The ClientToken of the launch that made an instance: a replay finds its instance by this tag even when
# the replay tries another candidate pool (EC2's own ClientToken check is per request parameters).
LAUNCH_TOKEN = "spotoptimizer.io/launch-token"
# The instance an image was made from (create_image), for people and for IAM conditions.
SOURCE_INSTANCE = "spotoptimizer.io/source-instance"
TAG_VALUE_MAX = 256
IMDS_HOP_LIMIT = 2  # a container on the host (one more network hop) still reaches IMDSv2


class InstanceParseError(ValueError):
    """An instance carries our owner tag but not what we need to manage it."""


def tag_map(raw_tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in raw_tags or () if "Key" in t}


def parse_instance(raw: InstanceTypeDef | Mapping[str, Any], region: str) -> ObservedInstance:
    """One DescribeInstances entry -> ObservedInstance. Raises InstanceParseError naming what is missing."""
    instance_id = str(raw.get("InstanceId", ""))
    if not instance_id:
        raise InstanceParseError("instance without InstanceId")
    labels = tag_map(raw.get("Tags"))
    owner = labels.get(tags.OWNER, "")
    if not owner:
        raise InstanceParseError(f"{instance_id}: no {tags.OWNER} tag")
    role_value = labels.get(tags.ROLE, "")
    try:
        role = Role(role_value)
    except ValueError:
        raise InstanceParseError(f"{instance_id}: {tags.ROLE}={role_value!r} is not a role") from None
    epoch_value = labels.get(tags.EPOCH, "0") or "0"
    try:
        epoch = int(epoch_value)
    except ValueError:
        raise InstanceParseError(f"{instance_id}: {tags.EPOCH}={epoch_value!r} is not an integer") from None
    state_name = str(raw.get("State", {}).get("Name", ""))
    try:
        state = InstanceState(state_name)
    except ValueError:
        raise InstanceParseError(f"{instance_id}: unknown state {state_name!r}") from None
    zone = str(raw.get("Placement", {}).get("AvailabilityZone", ""))
    instance_type = str(raw.get("InstanceType", ""))
    if not zone or not instance_type:
        raise InstanceParseError(f"{instance_id}: no instance type or availability zone")
    launched = raw.get("LaunchTime")
    if not isinstance(launched, datetime):
        raise InstanceParseError(f"{instance_id}: no LaunchTime")
    lifecycle = Capacity.SPOT if raw.get("InstanceLifecycle") == "spot" else Capacity.ON_DEMAND
    instance = Instance(
        instance_id=instance_id,
        pool=Pool(instance_type, zone, lifecycle),
        role=role,
        state=state,
        launched_at=launched,
        launch_key=labels.get(tags.LAUNCH_KEY, ""),
        purpose=labels.get(tags.PURPOSE, ""),
        epoch=epoch,
    )
    return ObservedInstance(owner=owner, agent=labels.get(tags.AGENT, ""), region=region, instance=instance)


@dataclass(frozen=True)
class ParsedInstances:
    instances: tuple[ObservedInstance, ...]
    problems: tuple[str, ...] = ()


def parse_reservations(pages: Iterable[Mapping[str, Any]], region: str) -> ParsedInstances:
    """Every instance of DescribeInstances pages; the unparsable ones are named in ``problems``."""
    found: list[ObservedInstance] = []
    problems: list[str] = []
    for page in pages:
        for reservation in page.get("Reservations", ()):
            for raw in reservation.get("Instances", ()):
                try:
                    found.append(parse_instance(raw, region))
                except InstanceParseError as exc:
                    problems.append(str(exc))
    return ParsedInstances(tuple(found), tuple(problems))


def launch_tags(request: LaunchRequest) -> list[TagTypeDef]:
    values = {
        tags.OWNER: request.owner,
        tags.AGENT: request.agent,
        tags.ROLE: request.role.value,
        tags.EPOCH: str(request.epoch),
        tags.PURPOSE: request.purpose,
        tags.LAUNCH_KEY: request.key,
        tags.MANAGED_BY: tags.MANAGED_BY_VALUE,
        LAUNCH_TOKEN: request.client_token,
    }
    return [{"Key": k, "Value": v[:TAG_VALUE_MAX]} for k, v in values.items()]


def candidate_token(request: LaunchRequest, index: int) -> str:
    """The ClientToken for the index-th candidate: the request's own for the first, a derived one after.

    EC2 binds a ClientToken to the parameters of the request that used it, so another pool needs another
    token; deriving it keeps a replay of the same candidate idempotent.
    """
    if index == 0:
        return request.client_token
    return f"{request.client_token[:56]}-c{index:02d}"[:64]


def run_instances_params(
    request: LaunchRequest, pool: Pool, subnet_id: str | None, client_token: str
) -> RunInstancesRequestTypeDef:
    """RunInstances for one candidate pool. boto3 base64-encodes UserData for RunInstances itself."""
    spec = request.launch
    labels = launch_tags(request)
    tagged: list[TagSpecificationTypeDef] = [
        {"ResourceType": "instance", "Tags": labels},
        {"ResourceType": "volume", "Tags": labels},
    ]
    if pool.is_spot:
        # Tagged too, so the IAM policy can require the owner tag on every resource a spot launch creates.
        tagged.append({"ResourceType": "spot-instances-request", "Tags": labels})
    params: RunInstancesRequestTypeDef = {
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": client_token,
        "InstanceType": pool.instance_type,  # type: ignore[typeddict-item]
        "MetadataOptions": {
            "HttpTokens": "required",
            "HttpPutResponseHopLimit": IMDS_HOP_LIMIT,
            "HttpEndpoint": "enabled",
        },
        "TagSpecifications": tagged,
    }
    if spec.launch_template_id or spec.launch_template_name:
        template: dict[str, str] = {"Version": spec.launch_template_version}
        if spec.launch_template_id:
            template["LaunchTemplateId"] = spec.launch_template_id
        else:
            template["LaunchTemplateName"] = str(spec.launch_template_name)
        params["LaunchTemplate"] = template  # type: ignore[typeddict-item]
    image = request.image_override or spec.image_id
    if image:
        params["ImageId"] = image
    if spec.instance_profile:
        key = "Arn" if spec.instance_profile.startswith("arn:") else "Name"
        params["IamInstanceProfile"] = {key: spec.instance_profile}  # type: ignore[misc]
    if spec.security_groups:
        params["SecurityGroupIds"] = list(spec.security_groups)
    if spec.user_data is not None:
        params["UserData"] = spec.user_data
    if subnet_id:
        params["SubnetId"] = subnet_id
    else:
        params["Placement"] = {"AvailabilityZone": pool.zone}
    if pool.is_spot:
        params["InstanceMarketOptions"] = {
            "MarketType": "spot",
            "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"},
        }
    return params


def launched_instance(
    raw: InstanceTypeDef | Mapping[str, Any], request: LaunchRequest, pool: Pool
) -> Instance:
    """The Instance a launch response describes, with what we asked for where the response is silent."""
    zone = str(raw.get("Placement", {}).get("AvailabilityZone") or pool.zone)
    launched = raw.get("LaunchTime")
    state_name = str(raw.get("State", {}).get("Name", "pending"))
    try:
        state = InstanceState(state_name)
    except ValueError:
        state = InstanceState.PENDING
    return Instance(
        instance_id=str(raw["InstanceId"]),
        pool=Pool(str(raw.get("InstanceType") or pool.instance_type), zone, pool.lifecycle),
        role=request.role,
        state=state,
        launched_at=launched if isinstance(launched, datetime) else datetime.now().astimezone(),
        launch_key=request.key,
        purpose=request.purpose,
        epoch=request.epoch,
    )


# ------------------------------------------------------------------------------------------ CreateFleet


@dataclass(frozen=True)
class FleetResult:
    instance_id: str | None
    pool: Pool | None
    refused: tuple[Pool, ...]
    other_errors: tuple[tuple[str, str], ...]  # (code, message) of errors that are not about capacity


def create_fleet_params(
    request: LaunchRequest, pools: tuple[Pool, ...], subnets: Mapping[str, str], client_token: str
) -> CreateFleetRequestTypeDef:
    """An ``instant`` fleet of one instance over every candidate (one override per type and subnet)."""
    spec = request.launch
    template: dict[str, str] = {"Version": spec.launch_template_version}
    if spec.launch_template_id:
        template["LaunchTemplateId"] = spec.launch_template_id
    elif spec.launch_template_name:
        template["LaunchTemplateName"] = spec.launch_template_name
    else:
        raise ValueError("CreateFleet needs a launch template")
    overrides: list[FleetLaunchTemplateOverridesRequestTypeDef] = []
    for pool in pools:
        override: FleetLaunchTemplateOverridesRequestTypeDef = {"InstanceType": pool.instance_type}  # type: ignore[typeddict-item]
        subnet = subnets.get(pool.zone)
        if subnet:
            override["SubnetId"] = subnet
        else:
            override["AvailabilityZone"] = pool.zone
        if request.image_override:
            override["ImageId"] = request.image_override
        overrides.append(override)
    spot = pools[0].is_spot
    labels = launch_tags(request)
    tag_specs: list[TagSpecificationTypeDef] = [
        {"ResourceType": "instance", "Tags": labels},
        {"ResourceType": "fleet", "Tags": labels},
    ]
    params: CreateFleetRequestTypeDef = {
        "Type": "instant",
        "ClientToken": client_token,
        "LaunchTemplateConfigs": [
            {"LaunchTemplateSpecification": template, "Overrides": overrides}  # type: ignore[typeddict-item]
        ],
        "TargetCapacitySpecification": {
            "TotalTargetCapacity": 1,
            "DefaultTargetCapacityType": "spot" if spot else "on-demand",
        },
        "TagSpecifications": tag_specs,
    }
    if spot:
        params["SpotOptions"] = {"AllocationStrategy": "price-capacity-optimized"}
    else:
        params["OnDemandOptions"] = {"AllocationStrategy": "lowest-price"}
    return params


def _override_pool(
    overrides: Mapping[str, Any], zone_of_subnet: Mapping[str, str], lifecycle: Capacity
) -> Pool | None:
    instance_type = overrides.get("InstanceType")
    zone = overrides.get("AvailabilityZone") or zone_of_subnet.get(str(overrides.get("SubnetId", "")))
    if not instance_type or not zone:
        return None
    return Pool(str(instance_type), str(zone), lifecycle)


def parse_fleet_response(
    response: Mapping[str, Any], zone_of_subnet: Mapping[str, str], lifecycle: Capacity
) -> FleetResult:
    """Which instance an instant fleet launched, and which overrides failed for capacity."""
    refused: list[Pool] = []
    others: list[tuple[str, str]] = []
    for error in response.get("Errors", ()):
        code = str(error.get("ErrorCode", ""))
        overrides = error.get("LaunchTemplateAndOverrides", {}).get("Overrides", {})
        pool = _override_pool(overrides, zone_of_subnet, lifecycle)
        if code in CAPACITY_CODES:
            if pool is not None and pool not in refused:
                refused.append(pool)
        else:
            others.append((code, str(error.get("ErrorMessage", ""))))
    for entry in response.get("Instances", ()):
        ids = entry.get("InstanceIds") or []
        if not ids:
            continue
        overrides = entry.get("LaunchTemplateAndOverrides", {}).get("Overrides", {})
        pool = _override_pool(overrides, zone_of_subnet, lifecycle)
        if pool is None and entry.get("InstanceType"):
            pool = _override_pool({"InstanceType": entry["InstanceType"]}, zone_of_subnet, lifecycle)
        return FleetResult(str(ids[0]), pool, tuple(refused), tuple(others))
    return FleetResult(None, None, tuple(refused), tuple(others))
