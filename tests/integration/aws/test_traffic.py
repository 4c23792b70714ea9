"""AwsTraffic against a moto server: Elastic IP reassociation, target-group moves, the Route 53 record.

moto's behaviour, measured: an associated Elastic IP shows on DescribeAddresses at once; deregistered
targets disappear from DescribeTargetHealth at once (AWS keeps them ``draining`` for the deregistration
delay); target health is not checked.
"""

from __future__ import annotations

from typing import Any

import pytest

from spot_operator.adapters.aws.clients import CallRecorder
from spot_operator.adapters.aws.ec2 import AwsEc2
from spot_operator.adapters.aws.traffic import AwsTraffic, DnsRecord
from spot_operator.errors import InvalidRequest, NotFound
from spot_operator.ports import TrafficTarget
from tests.fakes.moto_server import MotoAws
from tests.integration.aws.conftest import launch_request


async def two_instances(aws: MotoAws) -> tuple[str, str]:
    ec2 = AwsEc2(aws.clients())
    one = await ec2.launch(launch_request(token="t-1"))
    two = await ec2.launch(launch_request(token="t-2"))
    return one.instance.instance_id, two.instance.instance_id


def target_group(aws: MotoAws, name: str = "web") -> str:
    vpc = aws.boto("ec2").describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0][
        "VpcId"
    ]
    created: dict[str, Any] = aws.boto("elbv2").create_target_group(
        Name=name, Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance"
    )
    return str(created["TargetGroups"][0]["TargetGroupArn"])


def registered(aws: MotoAws, arn: str) -> set[str]:
    health = aws.boto("elbv2").describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return {h["Target"]["Id"] for h in health if h.get("TargetHealth", {}).get("State") != "draining"}


async def test_elastic_ip_moves_with_reassociation(aws: MotoAws) -> None:
    old, new = await two_instances(aws)
    allocation = aws.boto("ec2").allocate_address(Domain="vpc")["AllocationId"]
    traffic = AwsTraffic(aws.clients())
    target = TrafficTarget("us-east-1", elastic_ip_allocation_id=allocation)
    first = await traffic.move(target, old, None)
    assert await traffic.serving("us-east-1", [allocation]) == {allocation: old}
    moved = await traffic.move(target, new, old)
    assert await traffic.serving("us-east-1", [allocation]) == {allocation: new}
    for result in (first, moved):
        assert result.elastic_ip_seconds is not None
        assert result.elastic_ip_seconds >= 0
        assert (result.target_groups_seconds, result.dns_seconds, result.deregistration_delay_seconds) == (
            None,
            None,
            None,
        )


async def test_serving_is_one_call_for_every_agent(aws: MotoAws) -> None:
    old, new = await two_instances(aws)
    plain = aws.boto("ec2")
    allocations = [plain.allocate_address(Domain="vpc")["AllocationId"] for _ in range(5)]
    plain.associate_address(AllocationId=allocations[0], InstanceId=old)
    plain.associate_address(AllocationId=allocations[1], InstanceId=new)
    recorder = CallRecorder()
    traffic = AwsTraffic(aws.clients(recorder=recorder))
    answer = await traffic.serving("us-east-1", [*allocations, "eipalloc-0000000000000000f"])
    assert recorder.calls == {"ec2:DescribeAddresses": 1}
    assert answer[allocations[0]] == old
    assert answer[allocations[1]] == new
    assert [answer[a] for a in allocations[2:]] == [None, None, None]
    assert answer["eipalloc-0000000000000000f"] is None  # unknown: nowhere, not an error for the others
    assert await traffic.serving("us-east-1", []) == {}
    assert recorder.calls == {"ec2:DescribeAddresses": 1}


async def test_target_groups_register_new_then_deregister_old(aws: MotoAws) -> None:
    old, new = await two_instances(aws)
    groups = [target_group(aws, "web"), target_group(aws, "api")]
    aws.boto("elbv2").modify_target_group_attributes(
        TargetGroupArn=groups[1], Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "45"}]
    )
    recorder = CallRecorder()
    traffic = AwsTraffic(aws.clients(recorder=recorder))
    target = TrafficTarget("us-east-1", target_group_arns=tuple(groups))
    await traffic.move(target, old, None)
    assert [registered(aws, g) for g in groups] == [{old}, {old}]
    moved = await traffic.move(target, new, old)
    assert [registered(aws, g) for g in groups] == [{new}, {new}]
    assert moved.target_groups_seconds is not None
    # Reported, not waited for: the longest draining delay of the groups (moto's default is 300 s).
    assert moved.deregistration_delay_seconds == 300.0
    assert moved.elastic_ip_seconds is None
    # The delay is read once per group, not on every move.
    assert recorder.count("elasticloadbalancing:DescribeTargetGroupAttributes") == 2
    assert recorder.count("elasticloadbalancing:DeregisterTargets") == 2


async def test_route53_record_follows_the_elastic_ip(aws: MotoAws) -> None:
    old, new = await two_instances(aws)
    plain = aws.boto("ec2")
    allocation = plain.allocate_address(Domain="vpc")
    zone = aws.boto("route53").create_hosted_zone(Name="example.com", CallerReference="ref-1")["HostedZone"][
        "Id"
    ]
    zone_id = zone.rpartition("/")[2]
    traffic = AwsTraffic(aws.clients())
    target = TrafficTarget(
        "us-east-1",
        elastic_ip_allocation_id=allocation["AllocationId"],
        route53_record=f"{zone_id}/db.example.com",
    )
    moved = await traffic.move(target, new, old)
    assert moved.dns_seconds is not None
    assert moved.elastic_ip_seconds is not None
    records = aws.boto("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    [a_record] = [r for r in records if r["Type"] == "A"]
    assert a_record["Name"] == "db.example.com."
    assert a_record["ResourceRecords"] == [{"Value": allocation["PublicIp"]}]
    assert a_record["TTL"] == 60


async def test_route53_without_elastic_ip_uses_the_instance_public_ip(aws: MotoAws) -> None:
    _old, new = await two_instances(aws)
    zone = aws.boto("route53").create_hosted_zone(Name="example.com", CallerReference="ref-2")["HostedZone"][
        "Id"
    ]
    zone_id = zone.rpartition("/")[2]
    described = aws.boto("ec2").describe_instances(InstanceIds=[new])["Reservations"][0]["Instances"][0]
    public_ip = described["PublicIpAddress"]  # default subnets map a public IP on launch, in moto as in AWS
    target = TrafficTarget("us-east-1", route53_record=f"{zone_id}/db.example.com")
    moved = await AwsTraffic(aws.clients()).move(target, new, None)
    assert moved.dns_seconds is not None
    records = aws.boto("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    assert [r["ResourceRecords"] for r in records if r["Type"] == "A"] == [[{"Value": public_ip}]]


async def test_route53_record_into_a_missing_zone_is_not_found(aws: MotoAws) -> None:
    _old, new = await two_instances(aws)
    target = TrafficTarget("us-east-1", route53_record="Z0000000000000000000/db.example.com")
    with pytest.raises(NotFound):
        await AwsTraffic(aws.clients()).move(target, new, None)


def test_dns_record_parsing() -> None:
    assert DnsRecord.parse("Z123/db.example.com") == DnsRecord("Z123", "db.example.com.")
    with pytest.raises(InvalidRequest, match="ZONEID/name"):
        DnsRecord.parse("db.example.com")
