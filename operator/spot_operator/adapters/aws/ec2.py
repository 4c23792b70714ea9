"""The :class:`spot_operator.ports.Ec2` port over boto3.

- ``launch``: candidates in order with RunInstances (or one instant CreateFleet across them when
  ``use_fleet`` and the spec has a launch template). A capacity error puts the pool in ``refused`` and
  the next candidate is tried; when every candidate refused, InsufficientCapacity names them all.
  Before launching, the instances tagged with the request's ClientToken are looked up, so a replay finds
  the instance an earlier attempt made even in another candidate pool.
- ``describe_owned``: one paginated DescribeInstances per region, filtered on the owner tag key, for all
  agents at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from spot_operator import tags
from spot_operator.adapters.aws.clients import AwsClients
from spot_operator.adapters.aws.errors import call, classify, urgent
from spot_operator.adapters.aws.instances import (
    LAUNCH_TOKEN,
    SOURCE_INSTANCE,
    InstanceParseError,
    candidate_token,
    create_fleet_params,
    launched_instance,
    parse_fleet_response,
    parse_instance,
    parse_reservations,
    run_instances_params,
)
from spot_operator.api import Capacity
from spot_operator.errors import CloudError, InsufficientCapacity, InvalidRequest
from spot_operator.planning.model import Instance, InstanceState, Pool, Role
from spot_operator.ports import LaunchOutcome, LaunchRequest, ObservedInstance

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import TagSpecificationTypeDef, TagTypeDef

log = logging.getLogger(__name__)

PAGE_SIZE = 1000  # DescribeInstances' maximum page


class AwsEc2:
    """Implements :class:`spot_operator.ports.Ec2`."""

    def __init__(
        self,
        clients: AwsClients,
        use_fleet: bool = False,
        replay_guard: bool = True,
        waiter_delay_seconds: float = 5.0,
        waiter_max_attempts: int = 60,
    ) -> None:
        self.clients = clients
        self.use_fleet = use_fleet
        self.replay_guard = replay_guard
        self.waiter_delay_seconds = waiter_delay_seconds
        self.waiter_max_attempts = waiter_max_attempts
        self._default_subnets: dict[str, dict[str, str]] = {}
        self._subnet_locks: dict[str, asyncio.Lock] = {}

    def _ec2(self, region: str) -> EC2Client:
        return self.clients.ec2(region)

    # ------------------------------------------------------------------------------------- subnets
    async def default_subnets(self, region: str) -> dict[str, str]:
        """The default subnet of each zone in the region: one DescribeSubnets per region, then cached."""
        cached = self._default_subnets.get(region)
        if cached is not None:
            return cached
        lock = self._subnet_locks.setdefault(region, asyncio.Lock())
        async with lock:
            cached = self._default_subnets.get(region)
            if cached is not None:
                return cached
            ec2 = self._ec2(region)
            response = await call(
                "DescribeSubnets",
                lambda: ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}]),
            )
            found = {
                str(s["AvailabilityZone"]): str(s["SubnetId"])
                for s in response.get("Subnets", ())
                if s.get("AvailabilityZone") and s.get("SubnetId")
            }
            self._default_subnets[region] = found
            return found

    async def _subnets_for(self, request: LaunchRequest) -> dict[str, str]:
        explicit = dict(request.launch.subnets)
        missing = {p.zone for p in request.candidates} - set(explicit)
        if missing:
            defaults = await self.default_subnets(request.launch.region)
            for zone in missing:
                if zone in defaults:
                    explicit[zone] = defaults[zone]
        return explicit

    # -------------------------------------------------------------------------------------- launch
    async def launch(self, request: LaunchRequest) -> LaunchOutcome:
        if not request.candidates:
            raise InvalidRequest("launch without candidate pools", "NoCandidates", "RunInstances")
        with urgent(request.emergency):
            # Only a replay looks first: a failover's launch must not wait for a describe.
            if self.replay_guard and request.replay:
                earlier = await self._find_launched(request)
                if earlier is not None:
                    return LaunchOutcome(earlier)
            subnets = await self._subnets_for(request)
            has_template = bool(request.launch.launch_template_id or request.launch.launch_template_name)
            if self.use_fleet and has_template:
                return await self._launch_fleet(request, subnets)
            return await self._launch_each(request, subnets)

    async def _find_launched(self, request: LaunchRequest) -> Instance | None:
        ec2 = self._ec2(request.launch.region)
        response = await call(
            "DescribeInstances",
            lambda: ec2.describe_instances(
                Filters=[{"Name": f"tag:{LAUNCH_TOKEN}", "Values": [request.client_token]}]
            ),
        )
        for reservation in response.get("Reservations", ()):
            for raw in reservation.get("Instances", ()):
                try:
                    observed = parse_instance(raw, request.launch.region)
                except InstanceParseError as exc:
                    log.warning(
                        "%s: instance tagged with our launch token not understood: %s", request.agent, exc
                    )
                    continue
                if observed.owner == request.owner:
                    return observed.instance
        return None

    async def _launch_each(self, request: LaunchRequest, subnets: Mapping[str, str]) -> LaunchOutcome:
        ec2 = self._ec2(request.launch.region)
        refused: list[Pool] = []
        last: InsufficientCapacity | None = None
        for index, pool in enumerate(request.candidates):
            params = run_instances_params(
                request, pool, subnets.get(pool.zone), candidate_token(request, index)
            )
            try:
                response = await call("RunInstances", lambda p=params: ec2.run_instances(**p))  # type: ignore[misc]
            except InsufficientCapacity as exc:
                log.info(
                    "%s: no capacity in %s (%s), trying the next candidate", request.agent, pool, exc.code
                )
                refused.append(pool)
                last = exc
                continue
            instance = launched_instance(response["Instances"][0], request, pool)
            return LaunchOutcome(instance, tuple(refused))
        assert last is not None
        raise InsufficientCapacity(
            f"no capacity in {', '.join(map(str, refused))}: {last}",
            pools=refused,
            code=last.code,
            operation="RunInstances",
        )

    async def _launch_fleet(self, request: LaunchRequest, subnets: Mapping[str, str]) -> LaunchOutcome:
        """One instant fleet per lifecycle, in the order the candidates list them."""
        ec2 = self._ec2(request.launch.region)
        zone_of_subnet = {subnet: zone for zone, subnet in subnets.items()}
        groups: list[tuple[Capacity, tuple[Pool, ...]]] = []
        for lifecycle in dict.fromkeys(p.lifecycle for p in request.candidates):
            groups.append((lifecycle, tuple(p for p in request.candidates if p.lifecycle is lifecycle)))
        refused: list[Pool] = []
        for index, (lifecycle, pools) in enumerate(groups):
            params = create_fleet_params(request, pools, subnets, candidate_token(request, index))
            response = await call("CreateFleet", lambda p=params: ec2.create_fleet(**p))  # type: ignore[misc]
            result = parse_fleet_response(response, zone_of_subnet, lifecycle)
            refused.extend(p for p in result.refused if p not in refused)
            if result.instance_id is not None:
                pool = result.pool or pools[0]
                instance = Instance(
                    instance_id=result.instance_id,
                    pool=pool,
                    role=request.role,
                    state=InstanceState.PENDING,
                    launched_at=datetime.now().astimezone(),
                    launch_key=request.key,
                    purpose=request.purpose,
                    epoch=request.epoch,
                )
                return LaunchOutcome(instance, tuple(p for p in refused if p != pool))
            if result.other_errors:
                code, message = result.other_errors[0]
                raise classify(code)(f"CreateFleet: {code}: {message}", code, "CreateFleet")
            refused.extend(p for p in pools if p not in refused)
        raise InsufficientCapacity(
            f"no capacity in {', '.join(map(str, refused))}",
            pools=refused,
            code="InsufficientInstanceCapacity",
            operation="CreateFleet",
        )

    # ----------------------------------------------------------------------------------- observing
    async def describe_owned(self, region: str) -> list[ObservedInstance]:
        ec2 = self._ec2(region)

        def pages() -> list[Any]:
            paginator = ec2.get_paginator("describe_instances")
            iterator = paginator.paginate(
                Filters=[{"Name": "tag-key", "Values": [tags.OWNER]}],
                PaginationConfig={"PageSize": PAGE_SIZE},
            )
            return list(iterator)

        parsed = parse_reservations(await call("DescribeInstances", pages), region)
        for problem in parsed.problems:
            log.warning("%s: owned instance not understood: %s", region, problem)
        return list(parsed.instances)

    # ------------------------------------------------------------------------------------ changing
    async def set_role(self, region: str, instance_id: str, role: Role, epoch: int = 0) -> None:
        ec2 = self._ec2(region)
        labels: list[TagTypeDef] = [{"Key": tags.ROLE, "Value": role.value}]
        if epoch:
            labels.append({"Key": tags.EPOCH, "Value": str(epoch)})
        await call("CreateTags", lambda: ec2.create_tags(Resources=[instance_id], Tags=labels))

    async def terminate(self, region: str, instance_ids: Sequence[str]) -> None:
        if not instance_ids:
            return
        ec2 = self._ec2(region)
        await call("TerminateInstances", lambda: ec2.terminate_instances(InstanceIds=list(instance_ids)))

    async def create_image(self, region: str, instance_id: str, name: str, client_token: str) -> str:
        """An AMI of the instance without rebooting it. Idempotent by name: AMI names are unique per
        account and region, so an existing image of that name is the one an earlier attempt made."""
        existing = await self._image_named(region, name)
        if existing is not None:
            return existing
        ec2 = self._ec2(region)
        labels: list[TagTypeDef] = [
            {"Key": tags.MANAGED_BY, "Value": tags.MANAGED_BY_VALUE},
            {"Key": SOURCE_INSTANCE, "Value": instance_id},
            {"Key": LAUNCH_TOKEN, "Value": client_token},
        ]
        # The image carries the tags (the IAM policy requires them); its snapshots are found through it.
        specs: list[TagSpecificationTypeDef] = [{"ResourceType": "image", "Tags": labels}]
        try:
            response = await call(
                "CreateImage",
                lambda: ec2.create_image(
                    InstanceId=instance_id,
                    Name=name,
                    NoReboot=True,
                    TagSpecifications=specs,
                ),
            )
        except CloudError as exc:
            if exc.code != "InvalidAMIName.Duplicate":
                raise
            # Another attempt created it between our lookup and our create.
            existing = await self._image_named(region, name)
            if existing is None:
                raise
            return existing
        return str(response["ImageId"])

    async def _image_named(self, region: str, name: str) -> str | None:
        ec2 = self._ec2(region)
        response = await call(
            "DescribeImages",
            lambda: ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}]),
        )
        images = [i for i in response.get("Images", ()) if i.get("State") not in ("deregistered", "failed")]
        return str(images[0]["ImageId"]) if images else None

    async def move_volumes(
        self, region: str, volumes: Sequence[tuple[str, str]], from_instance: str | None, to_instance: str
    ) -> None:
        """Detach each volume from ``from_instance`` (or find it detached), wait, attach to ``to_instance``.

        Idempotent: a volume already attached to ``to_instance`` is left alone. A volume attached to any
        other instance is refused (InvalidRequest): it is not ours to take.
        """
        if not volumes:
            return
        ec2 = self._ec2(region)
        ids = [v for v, _device in volumes]
        described = await call("DescribeVolumes", lambda: ec2.describe_volumes(VolumeIds=ids))
        attached_to: dict[str, str | None] = {}
        for vol in described.get("Volumes", ()):
            live = [a for a in vol.get("Attachments", ()) if a.get("State") in ("attaching", "attached")]
            attached_to[str(vol["VolumeId"])] = str(live[0]["InstanceId"]) if live else None
        to_detach: list[str] = []
        to_attach: list[tuple[str, str]] = []
        for volume_id, device in volumes:
            holder = attached_to.get(volume_id)
            if holder == to_instance:
                continue
            if holder is not None and holder != from_instance:
                raise InvalidRequest(
                    f"{volume_id} is attached to {holder}, not to {from_instance or 'nothing'}",
                    "VolumeInUse",
                    "DetachVolume",
                )
            if holder is not None:
                to_detach.append(volume_id)
            to_attach.append((volume_id, device))
        for volume_id in to_detach:
            await call(
                "DetachVolume",
                lambda v=volume_id: ec2.detach_volume(VolumeId=v, InstanceId=str(from_instance)),  # type: ignore[misc]
            )
        waiter_config = {
            "Delay": max(1, int(self.waiter_delay_seconds)),
            "MaxAttempts": self.waiter_max_attempts,
        }
        if to_detach:
            available = ec2.get_waiter("volume_available")
            await call(
                "DescribeVolumes",
                lambda: available.wait(VolumeIds=to_detach, WaiterConfig=waiter_config),  # type: ignore[arg-type]
            )
        for volume_id, device in to_attach:
            await call(
                "AttachVolume",
                lambda v=volume_id, d=device: ec2.attach_volume(  # type: ignore[misc]
                    VolumeId=v, InstanceId=to_instance, Device=d
                ),
            )
        if to_attach:
            in_use = ec2.get_waiter("volume_in_use")
            attached = [v for v, _d in to_attach]
            await call(
                "DescribeVolumes",
                lambda: in_use.wait(VolumeIds=attached, WaiterConfig=waiter_config),  # type: ignore[arg-type]
            )
