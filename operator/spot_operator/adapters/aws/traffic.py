"""The :class:`spot_operator.ports.Traffic` port over boto3: Elastic IP, ELBv2 target groups, Route 53.

A move runs the Elastic IP and the target groups concurrently, then the DNS record (which needs the new
public IP), and reports the seconds each part took. Target groups: the new instance is registered
before the old one is deregistered; the deregistration delay (connection draining) runs on AWS's side
and is not waited for, only reported, so a failover is not held up by it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from spot_operator.adapters.aws.clients import AwsClients
from spot_operator.adapters.aws.errors import call, urgent
from spot_operator.errors import InvalidRequest, NotFound
from spot_operator.ports import TrafficMove, TrafficTarget

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

T = TypeVar("T")
DNS_TTL_SECONDS = 60
DEREGISTRATION_DELAY_ATTRIBUTE = "deregistration_delay.timeout_seconds"


@dataclass(frozen=True)
class DnsRecord:
    zone_id: str
    name: str

    @classmethod
    def parse(cls, value: str) -> DnsRecord:
        """'ZONEID/name' -> DnsRecord. Pure."""
        zone_id, sep, name = value.partition("/")
        if not sep or not zone_id or not name:
            raise InvalidRequest(f"route53 record {value!r}: expected 'ZONEID/name'", "InvalidRecord", "")
        return cls(zone_id, name if name.endswith(".") else name + ".")


async def _timed(part: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    started = time.perf_counter()
    result = await part()
    return result, time.perf_counter() - started


class AwsTraffic:
    """Implements :class:`spot_operator.ports.Traffic`."""

    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients
        self._public_ips: dict[str, str] = {}  # allocation id -> address (never changes)
        self._deregistration_delay: dict[str, float] = {}  # target group ARN -> seconds

    async def move(self, target: TrafficTarget, to_instance: str, from_instance: str | None) -> TrafficMove:
        """Moves are a failover's critical path: their calls go to the urgent worker pool."""
        with urgent():
            record = DnsRecord.parse(target.route53_record) if target.route53_record else None

            async def elastic_ip() -> float | None:
                if not target.elastic_ip_allocation_id:
                    return None
                allocation = target.elastic_ip_allocation_id
                _, seconds = await _timed(lambda: self._associate(target.region, allocation, to_instance))
                return seconds

            async def target_groups() -> tuple[float | None, float | None]:
                if not target.target_group_arns:
                    return None, None
                delay, seconds = await _timed(lambda: self._retarget(target, to_instance, from_instance))
                return seconds, delay

            eip_seconds, (tg_seconds, delay) = await asyncio.gather(elastic_ip(), target_groups())
            dns_seconds: float | None = None
            if record is not None:
                _, dns_seconds = await _timed(lambda: self._upsert(record, target, to_instance))
            return TrafficMove(
                elastic_ip_seconds=eip_seconds,
                target_groups_seconds=tg_seconds,
                dns_seconds=dns_seconds,
                deregistration_delay_seconds=delay,
            )

    # ---------------------------------------------------------------------------------- Elastic IP
    async def _associate(self, region: str, allocation_id: str, instance_id: str) -> None:
        ec2 = self.clients.ec2(region)
        await call(
            "AssociateAddress",
            lambda: ec2.associate_address(
                AllocationId=allocation_id, InstanceId=instance_id, AllowReassociation=True
            ),
        )

    async def serving(self, region: str, allocation_ids: Sequence[str]) -> dict[str, str | None]:
        """One DescribeAddresses for the region (unfiltered: a missing id must not fail everyone's answer)."""
        if not allocation_ids:
            return {}
        ec2 = self.clients.ec2(region)
        response = await call("DescribeAddresses", lambda: ec2.describe_addresses())
        pointing: dict[str, str | None] = {}
        for address in response.get("Addresses", ()):
            allocation = address.get("AllocationId")
            if allocation:
                pointing[str(allocation)] = address.get("InstanceId") or None
                if address.get("PublicIp"):
                    self._public_ips[str(allocation)] = str(address["PublicIp"])
        return {a: pointing.get(a) for a in allocation_ids}

    # ------------------------------------------------------------------------------- target groups
    async def _retarget(self, target: TrafficTarget, to_instance: str, from_instance: str | None) -> float:
        """Register in every group, then deregister the old instance; returns the longest draining delay."""
        elb = self.clients.elbv2(target.region)
        await asyncio.gather(
            *(
                call(
                    "RegisterTargets",
                    lambda a=arn: elb.register_targets(  # type: ignore[misc]
                        TargetGroupArn=a, Targets=[{"Id": to_instance}]
                    ),
                )
                for arn in target.target_group_arns
            )
        )
        if from_instance and from_instance != to_instance:
            await asyncio.gather(
                *(
                    call(
                        "DeregisterTargets",
                        lambda a=arn: elb.deregister_targets(  # type: ignore[misc]
                            TargetGroupArn=a, Targets=[{"Id": from_instance}]
                        ),
                    )
                    for arn in target.target_group_arns
                )
            )
        delays = await asyncio.gather(
            *(self._draining(target.region, arn) for arn in target.target_group_arns)
        )
        return max(delays, default=0.0)

    async def _draining(self, region: str, arn: str) -> float:
        cached = self._deregistration_delay.get(arn)
        if cached is not None:
            return cached
        elb = self.clients.elbv2(region)
        response = await call(
            "DescribeTargetGroupAttributes", lambda: elb.describe_target_group_attributes(TargetGroupArn=arn)
        )
        seconds = 300.0  # AWS's default when the attribute is absent
        for attribute in response.get("Attributes", ()):
            if attribute.get("Key") == DEREGISTRATION_DELAY_ATTRIBUTE:
                seconds = float(attribute.get("Value", seconds))
        self._deregistration_delay[arn] = seconds
        return seconds

    # ------------------------------------------------------------------------------------ Route 53
    async def _public_ip(self, target: TrafficTarget, instance_id: str) -> str:
        ec2: EC2Client = self.clients.ec2(target.region)
        allocation = target.elastic_ip_allocation_id
        if allocation:
            cached = self._public_ips.get(allocation)
            if cached:
                return cached
            response = await call(
                "DescribeAddresses", lambda: ec2.describe_addresses(AllocationIds=[allocation])
            )
            for address in response.get("Addresses", ()):
                if address.get("PublicIp"):
                    self._public_ips[allocation] = str(address["PublicIp"])
                    return str(address["PublicIp"])
            raise NotFound(
                f"Elastic IP {allocation} has no public address", "NoPublicIp", "DescribeAddresses"
            )
        described = await call("DescribeInstances", lambda: ec2.describe_instances(InstanceIds=[instance_id]))
        for reservation in described.get("Reservations", ()):
            for raw in reservation.get("Instances", ()):
                if raw.get("PublicIpAddress"):
                    return str(raw["PublicIpAddress"])
        raise NotFound(
            f"{instance_id} has no public IP for the DNS record", "NoPublicIp", "DescribeInstances"
        )

    async def _upsert(self, record: DnsRecord, target: TrafficTarget, instance_id: str) -> None:
        address = await self._public_ip(target, instance_id)
        route53 = self.clients.route53()
        await call(
            "ChangeResourceRecordSets",
            lambda: route53.change_resource_record_sets(
                HostedZoneId=record.zone_id,
                ChangeBatch={
                    "Comment": f"spot-optimizer: primary is {instance_id}",
                    "Changes": [
                        {
                            "Action": "UPSERT",
                            "ResourceRecordSet": {
                                "Name": record.name,
                                "Type": "A",
                                "TTL": DNS_TTL_SECONDS,
                                "ResourceRecords": [{"Value": address}],
                            },
                        }
                    ],
                },
            ),
        )
