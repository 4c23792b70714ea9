"""Pure EC2 translation: DescribeInstances entries, RunInstances / CreateFleet parameters and answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from spot_operator import tags
from spot_operator.adapters.aws.instances import (
    LAUNCH_TOKEN,
    InstanceParseError,
    candidate_token,
    create_fleet_params,
    parse_fleet_response,
    parse_instance,
    parse_reservations,
    run_instances_params,
)
from spot_operator.api import Capacity
from spot_operator.planning.model import InstanceState, Pool, Role
from spot_operator.ports import LaunchRequest, LaunchSpec

LAUNCHED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def described(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "InstanceId": "i-0123456789abcdef0",
        "InstanceType": "m5.large",
        "Placement": {"AvailabilityZone": "us-east-1b"},
        "State": {"Code": 16, "Name": "running"},
        "LaunchTime": LAUNCHED,
        "InstanceLifecycle": "spot",
        "Tags": [
            {"Key": tags.OWNER, "Value": "uid-1"},
            {"Key": tags.AGENT, "Value": "team/db"},
            {"Key": tags.ROLE, "Value": "primary"},
            {"Key": tags.EPOCH, "Value": "3"},
            {"Key": tags.PURPOSE, "Value": "switch/s1"},
            {"Key": tags.LAUNCH_KEY, "Value": "switch/uid-s1"},
        ],
    }
    raw.update(overrides)
    return raw


def request(**overrides: Any) -> LaunchRequest:
    values: dict[str, Any] = {
        "owner": "uid-1",
        "agent": "team/db",
        "key": "primary/1",
        "client_token": "so-" + "a" * 48,
        "candidates": (Pool("m5.large", "us-east-1a"), Pool("m5a.large", "us-east-1b")),
        "role": Role.PRIMARY,
        "launch": LaunchSpec(region="us-east-1", image_id="ami-0abc1234", security_groups=("sg-01234567",)),
        "purpose": "",
        "epoch": 2,
    }
    values.update(overrides)
    return LaunchRequest(**values)


def test_parse_instance_reads_tags_pool_and_lifecycle() -> None:
    obs = parse_instance(described(), "us-east-1")
    assert (obs.owner, obs.agent, obs.region) == ("uid-1", "team/db", "us-east-1")
    inst = obs.instance
    assert inst.pool == Pool("m5.large", "us-east-1b", Capacity.SPOT)
    assert (inst.role, inst.epoch, inst.state) == (Role.PRIMARY, 3, InstanceState.RUNNING)
    assert (inst.purpose, inst.launch_key, inst.launched_at) == ("switch/s1", "switch/uid-s1", LAUNCHED)


def test_parse_instance_without_lifecycle_is_on_demand() -> None:
    raw = described()
    del raw["InstanceLifecycle"]
    assert parse_instance(raw, "us-east-1").instance.pool.lifecycle is Capacity.ON_DEMAND


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"Tags": [{"Key": tags.ROLE, "Value": "primary"}]}, "no spotoptimizer.io/owner"),
        ({"Tags": [{"Key": tags.OWNER, "Value": "u"}, {"Key": tags.ROLE, "Value": "boss"}]}, "is not a role"),
        (
            {
                "Tags": [
                    {"Key": tags.OWNER, "Value": "u"},
                    {"Key": tags.ROLE, "Value": "replica"},
                    {"Key": tags.EPOCH, "Value": "x"},
                ]
            },
            "is not an integer",
        ),
        ({"State": {"Name": "exploded"}}, "unknown state"),
        ({"LaunchTime": None}, "no LaunchTime"),
    ],
)
def test_parse_instance_names_the_problem(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(InstanceParseError, match=problem):
        parse_instance(described(**change), "us-east-1")


def test_parse_reservations_keeps_good_instances_and_lists_problems() -> None:
    pages = [
        {"Reservations": [{"Instances": [described(), described(InstanceId="i-1", Tags=[])]}]},
        {"Reservations": [{"Instances": [described(InstanceId="i-2")]}]},
    ]
    parsed = parse_reservations(pages, "us-east-1")
    assert [o.instance.instance_id for o in parsed.instances] == ["i-0123456789abcdef0", "i-2"]
    assert len(parsed.problems) == 1
    assert "i-1" in parsed.problems[0]


def test_run_instances_params_spot_with_image() -> None:
    req = request()
    params = run_instances_params(req, req.candidates[0], "subnet-0aaa1111", req.client_token)
    assert params["ClientToken"] == req.client_token
    assert params["ImageId"] == "ami-0abc1234"
    assert "LaunchTemplate" not in params
    assert params["SubnetId"] == "subnet-0aaa1111"
    assert "Placement" not in params
    assert params["MetadataOptions"]["HttpTokens"] == "required"
    assert params["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert params["InstanceMarketOptions"]["SpotOptions"]["SpotInstanceType"] == "one-time"
    kinds = {
        spec["ResourceType"]: {t["Key"]: t["Value"] for t in spec["Tags"]}
        for spec in params["TagSpecifications"]
    }
    assert set(kinds) == {"instance", "volume", "spot-instances-request"}
    assert kinds["instance"][tags.OWNER] == "uid-1"
    assert kinds["instance"][tags.EPOCH] == "2"
    assert kinds["volume"][LAUNCH_TOKEN] == req.client_token


def test_run_instances_params_on_demand_with_template_and_no_subnet() -> None:
    spec = LaunchSpec(
        region="us-east-1",
        launch_template_name="web",
        launch_template_version="$Latest",
        instance_profile="arn:aws:iam::123456789012:instance-profile/web",
        user_data="#!/bin/sh",
    )
    req = request(launch=spec, image_override="ami-0fff0000")
    pool = Pool("m5.large", "us-east-1c", Capacity.ON_DEMAND)
    params = run_instances_params(req, pool, None, "tok")
    assert params["LaunchTemplate"] == {"LaunchTemplateName": "web", "Version": "$Latest"}
    assert params["ImageId"] == "ami-0fff0000"  # the primary's image overrides the template's
    assert params["IamInstanceProfile"] == {"Arn": "arn:aws:iam::123456789012:instance-profile/web"}
    assert params["Placement"] == {"AvailabilityZone": "us-east-1c"}
    assert params["UserData"] == "#!/bin/sh"
    assert "InstanceMarketOptions" not in params
    assert [t["ResourceType"] for t in params["TagSpecifications"]] == ["instance", "volume"]


def test_candidate_tokens_are_stable_distinct_and_short() -> None:
    req = request()
    tokens = [candidate_token(req, i) for i in range(12)]
    assert tokens[0] == req.client_token
    assert len(set(tokens)) == 12
    assert all(len(t) <= 64 for t in tokens)
    assert tokens == [candidate_token(req, i) for i in range(12)]


def test_create_fleet_params_one_override_per_candidate() -> None:
    spec = LaunchSpec(region="us-east-1", launch_template_id="lt-0123456789abcdef0")
    req = request(launch=spec)
    params = create_fleet_params(req, req.candidates, {"us-east-1a": "subnet-a"}, "tok")
    overrides = params["LaunchTemplateConfigs"][0]["Overrides"]
    assert overrides == [
        {"InstanceType": "m5.large", "SubnetId": "subnet-a"},
        {"InstanceType": "m5a.large", "AvailabilityZone": "us-east-1b"},
    ]
    assert params["Type"] == "instant"
    assert params["SpotOptions"] == {"AllocationStrategy": "price-capacity-optimized"}
    assert params["TargetCapacitySpecification"]["DefaultTargetCapacityType"] == "spot"


def test_create_fleet_params_needs_a_template() -> None:
    with pytest.raises(ValueError, match="launch template"):
        create_fleet_params(request(), request().candidates, {}, "tok")


def test_parse_fleet_response_with_partial_capacity_errors() -> None:
    # The shape CreateFleet (type instant) answers with: launched instances and per-override errors.
    response = {
        "FleetId": "fleet-1",
        "Errors": [
            {
                "LaunchTemplateAndOverrides": {
                    "Overrides": {"InstanceType": "m5.large", "SubnetId": "subnet-a"}
                },
                "Lifecycle": "spot",
                "ErrorCode": "InsufficientInstanceCapacity",
                "ErrorMessage": "We currently do not have sufficient m5.large capacity",
            }
        ],
        "Instances": [
            {
                "LaunchTemplateAndOverrides": {
                    "Overrides": {"InstanceType": "m5a.large", "SubnetId": "subnet-b"}
                },
                "Lifecycle": "spot",
                "InstanceIds": ["i-0fleet"],
                "InstanceType": "m5a.large",
            }
        ],
    }
    result = parse_fleet_response(
        response, {"subnet-a": "us-east-1a", "subnet-b": "us-east-1b"}, Capacity.SPOT
    )
    assert result.instance_id == "i-0fleet"
    assert result.pool == Pool("m5a.large", "us-east-1b")
    assert result.refused == (Pool("m5.large", "us-east-1a"),)
    assert result.other_errors == ()


def test_parse_fleet_response_other_errors_are_kept() -> None:
    response = {
        "Errors": [{"ErrorCode": "InvalidLaunchTemplateName.NotFoundException", "ErrorMessage": "gone"}]
    }
    result = parse_fleet_response(response, {}, Capacity.SPOT)
    assert result.instance_id is None
    assert result.other_errors == (("InvalidLaunchTemplateName.NotFoundException", "gone"),)
