"""deploy/aws/iam-policy.json allows every AWS operation the adapters call, and little else.

The botocore hook of :class:`AwsClients` records ``<IAM prefix>:<Operation>`` for every call. This test
runs after the other tests (see conftest) and checks what they recorded, plus a tour of every adapter
method, so it also holds when it runs alone.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

from spot_operator.adapters.aws.clients import CallRecorder
from spot_operator.adapters.aws.ec2 import AwsEc2
from spot_operator.adapters.aws.prices import AwsSpotPrices
from spot_operator.adapters.aws.queue import SqsNoticeQueue
from spot_operator.adapters.aws.traffic import AwsTraffic
from spot_operator.planning.model import Role
from spot_operator.ports import LaunchSpec, TrafficTarget
from tests.fakes.moto_server import MotoAws
from tests.integration.aws.conftest import AMI, launch_request

POLICY = Path(__file__).resolve().parents[3] / "deploy" / "aws" / "iam-policy.json"
OWNER_TAG = "spotoptimizer.io/owner"
# Batch APIs are authorized by their single-message action.
IAM_ACTION = {"sqs:DeleteMessageBatch": "sqs:DeleteMessage"}
# Granted without a call of that name: iam:PassRole is checked inside RunInstances with a profile.
IMPLIED = {"iam:PassRole"}


def statements() -> list[dict[str, Any]]:
    policy = json.loads(POLICY.read_text())
    assert policy["Version"] == "2012-10-17"
    return list(policy["Statement"])


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def allowed(action: str) -> bool:
    wanted = IAM_ACTION.get(action, action).lower()
    return any(
        fnmatch.fnmatchcase(wanted, granted.lower())
        for s in statements()
        if s["Effect"] == "Allow"
        for granted in actions_of(s)
    )


async def tour(aws: MotoAws, recorder: CallRecorder) -> None:
    """Every adapter method once, against moto."""
    clients = aws.clients(recorder=recorder)
    ec2 = AwsEc2(clients, waiter_delay_seconds=1)
    plain = aws.boto("ec2")
    primary = (await ec2.launch(launch_request(zones=("us-east-1a",)))).instance
    plain.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": AMI})
    fleet = AwsEc2(clients, use_fleet=True)
    replica = (
        await fleet.launch(
            launch_request(
                zones=("us-east-1a",), token="t-2", launch=LaunchSpec("us-east-1", launch_template_name="web")
            )
        )
    ).instance
    await ec2.describe_owned("us-east-1")
    await ec2.set_role("us-east-1", replica.instance_id, Role.PRIMARY, 2)
    await ec2.create_image("us-east-1", primary.instance_id, "spot-optimizer-tour", "t-img")
    volume = plain.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    plain.attach_volume(VolumeId=volume, InstanceId=primary.instance_id, Device="/dev/sdf")
    await ec2.move_volumes("us-east-1", [(volume, "/dev/sdf")], primary.instance_id, replica.instance_id)

    allocation = plain.allocate_address(Domain="vpc")["AllocationId"]
    vpc = plain.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = aws.boto("elbv2").create_target_group(Name="tour", Protocol="HTTP", Port=80, VpcId=vpc)
    zone = aws.boto("route53").create_hosted_zone(Name="tour.example", CallerReference="tour")["HostedZone"][
        "Id"
    ]
    traffic = AwsTraffic(clients)
    target = TrafficTarget(
        "us-east-1",
        elastic_ip_allocation_id=allocation,
        target_group_arns=(group["TargetGroups"][0]["TargetGroupArn"],),
        route53_record=f"{zone.rpartition('/')[2]}/db.tour.example",
    )
    await traffic.move(target, primary.instance_id, None)
    await traffic.move(target, replica.instance_id, primary.instance_id)
    await traffic.serving("us-east-1", [allocation])
    await ec2.terminate("us-east-1", [primary.instance_id])

    prices = AwsSpotPrices(clients)
    await prices.spot_prices("us-east-1", ["m5.large"], None)
    await prices.on_demand_prices("us-east-1", ["m5.large"])  # moto has no Price List API: a recorded failure

    url = aws.boto("sqs").create_queue(QueueName="spot-optimizer-interruptions")["QueueUrl"]
    aws.boto("sqs").send_message(QueueUrl=url, MessageBody="{}")
    queue = SqsNoticeQueue(clients, url, region=aws.region)
    await queue.delete(await queue.receive(wait_seconds=1))


async def test_every_operation_called_is_allowed(aws: MotoAws, aws_call_recorder: CallRecorder) -> None:
    recorder = CallRecorder()
    await tour(aws, recorder)
    toured = recorder.actions
    assert {
        "ec2:RunInstances",
        "ec2:CreateFleet",
        "ec2:DescribeInstances",
        "ec2:CreateTags",
        "ec2:TerminateInstances",
        "ec2:CreateImage",
        "ec2:AttachVolume",
        "ec2:DetachVolume",
        "ec2:AssociateAddress",
        "elasticloadbalancing:RegisterTargets",
        "route53:ChangeResourceRecordSets",
        "ec2:DescribeSpotPriceHistory",
        "pricing:GetProducts",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessageBatch",
    } <= toured
    called = toured | aws_call_recorder.actions
    missing = sorted(a for a in called if not allowed(a))
    assert missing == [], f"called but not allowed by {POLICY.name}: {missing}"
    # Least privilege: nothing granted that no adapter calls.
    granted = {a for s in statements() if s["Effect"] == "Allow" for a in actions_of(s)}
    used = {IAM_ACTION.get(a, a) for a in called}
    assert sorted(granted - used - IMPLIED) == []


def test_create_and_destroy_are_conditioned_on_the_owner_tag() -> None:
    for statement in statements():
        actions = set(actions_of(statement))
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        condition = json.dumps(statement.get("Condition", {}))
        assert not any(a == "*" or a.endswith(":*") for a in actions), statement["Sid"]
        touches_instances = any(r.endswith(":instance/*") for r in resources)
        if touches_instances and actions & {"ec2:RunInstances", "ec2:CreateFleet"}:
            assert f"aws:RequestTag/{OWNER_TAG}" in condition, statement["Sid"]
        if touches_instances and actions & {"ec2:TerminateInstances", "ec2:CreateImage", "ec2:AttachVolume"}:
            assert f"aws:ResourceTag/{OWNER_TAG}" in condition, statement["Sid"]
        if "ec2:CreateTags" in actions:
            assert "ec2:CreateAction" in condition or f"aws:ResourceTag/{OWNER_TAG}" in condition, statement[
                "Sid"
            ]
        if statement["Resource"] == "*":
            assert all(":Describe" in a or a == "pricing:GetProducts" for a in actions), statement["Sid"]
