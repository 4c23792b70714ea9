"""Fixtures for the AWS contract tests: the injecting proxy and small set-up helpers (plain boto3 clients,
so set-up calls are neither counted nor recorded for the IAM-policy coverage test)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from spot_operator.planning.model import Pool, Role
from spot_operator.ports import LaunchRequest, LaunchSpec
from tests.fakes.moto_server import MotoAws
from tests.integration.aws.proxy import InjectingProxy, running_proxy

AMI = "ami-0123456789abcdef0"  # moto does not validate image ids unless told to


@pytest.fixture
def proxy(aws: MotoAws) -> Iterator[InjectingProxy]:
    with running_proxy(aws.url) as running:
        yield running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the IAM-policy coverage test after every other test, so it sees what they called."""
    last = [
        i for i in items if i.nodeid.endswith("test_iam_policy.py::test_every_operation_called_is_allowed")
    ]
    for item in last:
        items.remove(item)
        items.append(item)


def launch_request(
    owner: str = "uid-1",
    zones: tuple[str, ...] = ("us-east-1a", "us-east-1b"),
    instance_type: str = "m5.large",
    token: str = "so-token-1",
    launch: LaunchSpec | None = None,
    **overrides: Any,
) -> LaunchRequest:
    values: dict[str, Any] = {
        "owner": owner,
        "agent": f"default/{owner}",
        "key": "primary/1",
        "client_token": token,
        "candidates": tuple(Pool(instance_type, z) for z in zones),
        "role": Role.PRIMARY,
        "launch": launch or LaunchSpec(region="us-east-1", image_id=AMI, user_data="#!/bin/sh\necho ready\n"),
        "epoch": 1,
    }
    values.update(overrides)
    return LaunchRequest(**values)


def default_subnets(aws: MotoAws, region: str = "us-east-1") -> dict[str, str]:
    ec2 = aws.boto("ec2", region)
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    return {s["AvailabilityZone"]: s["SubnetId"] for s in subnets}


def describe(aws: MotoAws, instance_id: str, region: str = "us-east-1") -> dict[str, Any]:
    reservations = aws.boto("ec2", region).describe_instances(InstanceIds=[instance_id])["Reservations"]
    instance: dict[str, Any] = reservations[0]["Instances"][0]
    return instance
