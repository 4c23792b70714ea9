"""AwsEc2 against a moto server over HTTP (and, for what moto cannot do, through the injecting proxy).

moto's behaviour, measured: it ignores ClientToken (two RunInstances with one token make two instances),
never refuses capacity, starts instances ``running`` at once and ignores CreateFleet's allocation strategy.
AWS's behaviour the proxy reproduces: InsufficientInstanceCapacity answered with HTTP 500 and the XML
error body EC2 sends; throttling as RequestLimitExceeded with HTTP 503.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest

from spot_operator import tags
from spot_operator.adapters.aws.clients import AwsClients, CallRecorder
from spot_operator.adapters.aws.ec2 import AwsEc2
from spot_operator.adapters.aws.instances import LAUNCH_TOKEN
from spot_operator.api import Capacity
from spot_operator.errors import InsufficientCapacity, InvalidRequest, NotFound, Throttled, Unauthorized
from spot_operator.planning.model import InstanceState, Pool, Role
from spot_operator.ports import LaunchSpec
from tests.fakes.moto_server import MotoAws
from tests.integration.aws.conftest import AMI, default_subnets, describe, launch_request
from tests.integration.aws.proxy import InjectingProxy, Rule

ICE_MESSAGE = (
    "We currently do not have sufficient m5.large capacity in the Availability Zone you requested "
    "(us-east-1a). Our system will be working on provisioning additional capacity. You can currently get "
    "m5.large capacity by not specifying an Availability Zone in your request or choosing us-east-1b."
)


def clients_via(proxy: InjectingProxy, aws: MotoAws, max_attempts: int, recorder: CallRecorder) -> AwsClients:
    return aws.clients(endpoint_url=proxy.url, recorder=recorder, max_attempts=max_attempts)


def in_zone(zone: str, subnets: dict[str, str]) -> Any:
    return lambda params: params.get("SubnetId") == subnets[zone]


async def test_launch_tags_metadata_user_data_and_default_subnet(aws: MotoAws) -> None:
    ec2 = AwsEc2(aws.clients())
    outcome = await ec2.launch(launch_request())
    inst = outcome.instance
    assert outcome.refused == ()
    assert inst.pool == Pool("m5.large", "us-east-1a")
    assert (inst.role, inst.epoch, inst.launch_key) == (Role.PRIMARY, 1, "primary/1")
    raw = describe(aws, inst.instance_id)
    labels = {t["Key"]: t["Value"] for t in raw["Tags"]}
    assert labels[tags.OWNER] == "uid-1"
    assert labels[tags.AGENT] == "default/uid-1"
    assert labels[tags.ROLE] == "primary"
    assert labels[tags.EPOCH] == "1"
    assert labels[tags.LAUNCH_KEY] == "primary/1"
    assert labels[tags.MANAGED_BY] == tags.MANAGED_BY_VALUE
    assert labels[LAUNCH_TOKEN] == "so-token-1"
    assert raw["MetadataOptions"]["HttpTokens"] == "required"
    assert raw["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert raw["InstanceLifecycle"] == "spot"
    assert raw["SubnetId"] == default_subnets(aws)["us-east-1a"]
    user_data = aws.boto("ec2").describe_instance_attribute(InstanceId=inst.instance_id, Attribute="userData")
    assert base64.b64decode(user_data["UserData"]["Value"]).decode() == "#!/bin/sh\necho ready\n"
    volumes = aws.boto("ec2").describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [inst.instance_id]}]
    )["Volumes"]
    assert volumes
    assert all({t["Key"]: t["Value"] for t in v["Tags"]}[tags.OWNER] == "uid-1" for v in volumes)


async def test_on_demand_launch_has_no_spot_lifecycle_and_uses_the_spec_subnet(aws: MotoAws) -> None:
    subnet = default_subnets(aws)["us-east-1b"]
    spec = LaunchSpec(region="us-east-1", image_id=AMI, subnets={"us-east-1b": subnet})
    request = launch_request(launch=spec, candidates=(Pool("c5.large", "us-east-1b", Capacity.ON_DEMAND),))
    outcome = await AwsEc2(aws.clients()).launch(request)
    raw = describe(aws, outcome.instance.instance_id)
    assert "InstanceLifecycle" not in raw
    assert raw["SubnetId"] == subnet
    observed = await AwsEc2(aws.clients()).describe_owned("us-east-1")
    assert [o.instance.pool for o in observed] == [Pool("c5.large", "us-east-1b", Capacity.ON_DEMAND)]


async def test_same_token_twice_is_one_instance(aws: MotoAws) -> None:
    recorder = CallRecorder()
    ec2 = AwsEc2(aws.clients(recorder=recorder))
    first = await ec2.launch(launch_request())
    assert recorder.count("ec2:DescribeInstances") == 0  # a first try does not look before it leaps
    again = await ec2.launch(launch_request(replay=True))  # the answer to the first was lost
    assert again.instance.instance_id == first.instance.instance_id
    assert recorder.count("ec2:RunInstances") == 1
    assert len(await ec2.describe_owned("us-east-1")) == 1
    # A new attempt (new token) is a new instance.
    other = await ec2.launch(launch_request(token="so-token-2"))
    assert other.instance.instance_id != first.instance.instance_id


def test_moto_ignores_client_token(aws: MotoAws) -> None:
    """Why the adapter looks its token up first: moto (unlike EC2) launches twice for one ClientToken."""
    ec2 = aws.boto("ec2")
    for _ in range(2):
        ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, ClientToken="same-token")
    assert sum(len(r["Instances"]) for r in ec2.describe_instances()["Reservations"]) == 2


async def test_capacity_error_moves_to_the_next_candidate_without_retrying(
    aws: MotoAws, proxy: InjectingProxy
) -> None:
    subnets = default_subnets(aws)
    proxy.fail(
        "RunInstances", "InsufficientInstanceCapacity", ICE_MESSAGE, 500, in_zone("us-east-1a", subnets)
    )
    recorder = CallRecorder()
    # Five attempts allowed: an HTTP 500 would normally be retried, a capacity error must not be.
    ec2 = AwsEc2(clients_via(proxy, aws, max_attempts=5, recorder=recorder))
    outcome = await ec2.launch(launch_request())
    assert outcome.refused == (Pool("m5.large", "us-east-1a"),)
    assert outcome.instance.pool == Pool("m5.large", "us-east-1b")
    calls = proxy.calls("RunInstances")
    assert [c.answered_by_proxy for c in calls] == [True, False]
    assert calls[0].params["ClientToken"] == "so-token-1"
    assert calls[1].params["ClientToken"] != calls[0].params["ClientToken"]
    assert describe(aws, outcome.instance.instance_id)["Placement"]["AvailabilityZone"] == "us-east-1b"


@pytest.mark.parametrize(
    ("code", "status"), [("InsufficientInstanceCapacity", 500), ("SpotMaxPriceTooLow", 400)]
)
async def test_all_candidates_refused(aws: MotoAws, proxy: InjectingProxy, code: str, status: int) -> None:
    proxy.fail("RunInstances", code, "no capacity", status, times=None)
    ec2 = AwsEc2(clients_via(proxy, aws, max_attempts=3, recorder=CallRecorder()))
    with pytest.raises(InsufficientCapacity) as info:
        await ec2.launch(launch_request())
    assert info.value.pools == (Pool("m5.large", "us-east-1a"), Pool("m5.large", "us-east-1b"))
    assert info.value.code == code
    assert len(proxy.calls("RunInstances")) == 2
    assert await AwsEc2(aws.clients()).describe_owned("us-east-1") == []


async def test_throttled_launch_is_retried_with_the_same_token(aws: MotoAws, proxy: InjectingProxy) -> None:
    proxy.fail("RunInstances", "RequestLimitExceeded", "Request limit exceeded.", 503, times=1)
    ec2 = AwsEc2(clients_via(proxy, aws, max_attempts=3, recorder=CallRecorder()))
    outcome = await ec2.launch(launch_request())
    calls = proxy.calls("RunInstances")
    assert [c.answered_by_proxy for c in calls] == [True, False]
    assert calls[0].params["ClientToken"] == calls[1].params["ClientToken"] == "so-token-1"
    assert outcome.refused == ()


async def test_throttling_that_persists_is_surfaced(aws: MotoAws, proxy: InjectingProxy) -> None:
    proxy.fail("RunInstances", "RequestLimitExceeded", "Request limit exceeded.", 503, times=None)
    ec2 = AwsEc2(clients_via(proxy, aws, max_attempts=2, recorder=CallRecorder()))
    with pytest.raises(Throttled) as info:
        await ec2.launch(launch_request())
    assert info.value.retryable
    assert len(proxy.calls("RunInstances")) == 2  # botocore retried once, then gave up


async def test_unauthorized_stops_the_candidate_loop(aws: MotoAws, proxy: InjectingProxy) -> None:
    proxy.fail("RunInstances", "UnauthorizedOperation", "You are not authorized", 403, times=None)
    ec2 = AwsEc2(clients_via(proxy, aws, max_attempts=2, recorder=CallRecorder()))
    with pytest.raises(Unauthorized):
        await ec2.launch(launch_request())
    assert len(proxy.calls("RunInstances")) == 1


async def test_fleet_launch_with_a_template(aws: MotoAws) -> None:
    aws.boto("ec2").create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": AMI})
    spec = LaunchSpec(region="us-east-1", launch_template_name="web")
    recorder = CallRecorder()
    ec2 = AwsEc2(aws.clients(recorder=recorder), use_fleet=True)
    outcome = await ec2.launch(launch_request(launch=spec))
    assert recorder.count("ec2:CreateFleet") == 1
    assert recorder.count("ec2:RunInstances") == 0
    assert outcome.instance.pool.instance_type == "m5.large"
    labels = {t["Key"]: t["Value"] for t in describe(aws, outcome.instance.instance_id).get("Tags", [])}
    assert labels.get(tags.OWNER) == "uid-1"
    assert [o.instance.instance_id for o in await ec2.describe_owned("us-east-1")] == [
        outcome.instance.instance_id
    ]


FLEET_ERRORS = """<?xml version="1.0" encoding="UTF-8"?>
<CreateFleetResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
<requestId>7c9b2a41-0e2b-4ee1-9a4f-3e2c1EXAMPLE</requestId><fleetId>fleet-0123456789abcdef0</fleetId>
<errorSet>{items}</errorSet><fleetInstanceSet/></CreateFleetResponse>"""
FLEET_ERROR_ITEM = """<item><launchTemplateAndOverrides><launchTemplateSpecification>
<launchTemplateName>web</launchTemplateName><version>1</version></launchTemplateSpecification>
<overrides><instanceType>m5.large</instanceType><subnetId>{subnet}</subnetId></overrides>
</launchTemplateAndOverrides><lifecycle>spot</lifecycle><errorCode>InsufficientInstanceCapacity</errorCode>
<errorMessage>There is no Spot capacity available that matches your request.</errorMessage></item>"""


async def test_fleet_that_finds_no_capacity(aws: MotoAws, proxy: InjectingProxy) -> None:
    """An instant fleet answers 200 with per-override errors (not an HTTP error) when nothing launched."""
    aws.boto("ec2").create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": AMI})
    subnets = default_subnets(aws)
    body = FLEET_ERRORS.format(
        items="".join(FLEET_ERROR_ITEM.format(subnet=subnets[z]) for z in ("us-east-1a", "us-east-1b"))
    )
    proxy.add(Rule("CreateFleet", lambda _p: (200, "text/xml;charset=UTF-8", body)))
    ec2 = AwsEc2(clients_via(proxy, aws, max_attempts=2, recorder=CallRecorder()), use_fleet=True)
    with pytest.raises(InsufficientCapacity) as info:
        await ec2.launch(launch_request(launch=LaunchSpec(region="us-east-1", launch_template_name="web")))
    assert set(info.value.pools) == {Pool("m5.large", "us-east-1a"), Pool("m5.large", "us-east-1b")}
    params = proxy.calls("CreateFleet")[0].params
    assert params["Type"] == "instant"
    assert params["SpotOptions.AllocationStrategy"] == "price-capacity-optimized"
    assert params["LaunchTemplateConfigs.1.Overrides.2.SubnetId"] == subnets["us-east-1b"]


async def test_describe_owned_is_one_call_for_many_agents(aws: MotoAws) -> None:
    plain = aws.boto("ec2")
    for n in range(40):
        plain.run_instances(
            ImageId=AMI,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [
                        {"Key": tags.OWNER, "Value": f"uid-{n % 20}"},
                        {"Key": tags.ROLE, "Value": "primary"},
                        {"Key": tags.EPOCH, "Value": str(n)},
                    ],
                }
            ],
        )
    plain.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)  # not ours
    recorder = CallRecorder()
    observed = await AwsEc2(aws.clients(recorder=recorder)).describe_owned("us-east-1")
    assert recorder.calls == {"ec2:DescribeInstances": 1}
    assert len(observed) == 40
    assert {o.owner for o in observed} == {f"uid-{n}" for n in range(20)}
    assert sorted(o.instance.epoch for o in observed) == list(range(40))


async def test_set_role_terminate_and_not_found(aws: MotoAws) -> None:
    ec2 = AwsEc2(aws.clients())
    inst = (await ec2.launch(launch_request())).instance
    await ec2.set_role("us-east-1", inst.instance_id, Role.RETIRING, epoch=7)
    [seen] = await ec2.describe_owned("us-east-1")
    assert (seen.instance.role, seen.instance.epoch) == (Role.RETIRING, 7)
    await ec2.terminate("us-east-1", [inst.instance_id])
    [gone] = await ec2.describe_owned("us-east-1")
    assert gone.instance.state in (InstanceState.SHUTTING_DOWN, InstanceState.TERMINATED)
    with pytest.raises(NotFound):
        await ec2.terminate("us-east-1", ["i-00000000000000000"])


async def test_create_image_is_idempotent_by_name(aws: MotoAws) -> None:
    recorder = CallRecorder()
    ec2 = AwsEc2(aws.clients(recorder=recorder))
    inst = (await ec2.launch(launch_request())).instance
    first = await ec2.create_image("us-east-1", inst.instance_id, "spot-optimizer-uid-1-switch-1", "tok-img")
    again = await ec2.create_image("us-east-1", inst.instance_id, "spot-optimizer-uid-1-switch-1", "tok-img")
    assert first == again
    assert first.startswith("ami-")
    assert recorder.count("ec2:CreateImage") == 1
    image = aws.boto("ec2").describe_images(ImageIds=[first])["Images"][0]
    assert image["Name"] == "spot-optimizer-uid-1-switch-1"


async def test_move_volumes(aws: MotoAws) -> None:
    ec2 = AwsEc2(aws.clients(), waiter_delay_seconds=1, waiter_max_attempts=10)
    one_zone = ("us-east-1a",)
    old = (await ec2.launch(launch_request(zones=one_zone))).instance
    new = (await ec2.launch(launch_request(zones=one_zone, token="so-token-2"))).instance
    stranger = (await ec2.launch(launch_request(owner="uid-2", zones=one_zone, token="so-token-3"))).instance
    plain = aws.boto("ec2")
    volume = plain.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    plain.attach_volume(VolumeId=volume, InstanceId=old.instance_id, Device="/dev/sdf")

    await ec2.move_volumes("us-east-1", [(volume, "/dev/sdf")], old.instance_id, new.instance_id)
    [attachment] = plain.describe_volumes(VolumeIds=[volume])["Volumes"][0]["Attachments"]
    assert (attachment["InstanceId"], attachment["Device"]) == (new.instance_id, "/dev/sdf")
    # Again (a replay): nothing to do.
    await ec2.move_volumes("us-east-1", [(volume, "/dev/sdf")], old.instance_id, new.instance_id)
    assert (
        plain.describe_volumes(VolumeIds=[volume])["Volumes"][0]["Attachments"][0]["InstanceId"]
        == new.instance_id
    )
    # Attached to an instance we were not told about: refused, left where it is.
    with pytest.raises(InvalidRequest, match="attached to"):
        await ec2.move_volumes("us-east-1", [(volume, "/dev/sdf")], old.instance_id, stranger.instance_id)


async def test_replayed_launch_finds_the_instance_of_another_candidate(
    aws: MotoAws, proxy: InjectingProxy
) -> None:
    """First try: zone a refused, zone b launched. A replay of the same request (same token) must return
    the zone-b instance even though zone a has capacity again."""
    subnets = default_subnets(aws)
    proxy.fail(
        "RunInstances", "InsufficientInstanceCapacity", ICE_MESSAGE, 500, in_zone("us-east-1a", subnets)
    )
    ec2 = AwsEc2(clients_via(proxy, aws, max_attempts=2, recorder=CallRecorder()))
    first = await ec2.launch(launch_request())
    replay = await ec2.launch(dataclasses.replace(launch_request(), replay=True))
    assert replay.instance.instance_id == first.instance.instance_id
    assert len(proxy.calls("RunInstances")) == 2
