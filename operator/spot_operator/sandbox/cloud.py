"""The sandbox's own calls to the moto server: what the examples need before they are applied, and what it
reads afterwards to show (and check) what the operator did.

Plain boto3 clients, not the operator's adapters: the operator's AWS call metrics count only its own
calls. Every method blocks; the runner calls them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from spot_operator import tags
from spot_operator.adapters.aws.instances import InstanceParseError, parse_instance
from spot_operator.ports import ObservedInstance
from spot_operator.sandbox.manifests import Manifest, Substitutions, needed_names
from spot_operator.sandbox.moto import ACCESS_KEY, SECRET_KEY

REGION = "us-east-1"
TARGET_GROUP_PORT = 7777
AMI_NAME = "amzn2-ami-hvm-*-x86_64-gp2"


@dataclass
class SandboxAws:
    endpoint_url: str
    region: str = REGION
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            session: Any = boto3.session.Session()
            self._clients[service] = session.client(
                service,
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
                config=Config(retries={"mode": "standard", "total_max_attempts": 3}, read_timeout=30),
            )
        return self._clients[service]

    # ------------------------------------------------------------------------------ before applying
    def prepare(self, examples: Sequence[Manifest]) -> Substitutions:
        """Create what the examples refer to: an AMI to use, their launch templates and instance profiles
        (under the examples' names), a security group, a target group and an Elastic IP."""
        ec2 = self.client("ec2")
        image_id = self._image_id()
        vpc_id = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        subnets = {
            s["AvailabilityZone"]: s["SubnetId"]
            for s in ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
        }
        for doc in examples:
            template, profile = needed_names(doc)
            if template:
                ec2.create_launch_template(
                    LaunchTemplateName=template, LaunchTemplateData={"ImageId": image_id}
                )
            if profile:
                self._instance_profile(profile)
        group = ec2.create_security_group(
            GroupName="spot-sandbox", Description="spot-optimizer sandbox", VpcId=vpc_id
        )["GroupId"]
        target_group = self.client("elbv2").create_target_group(
            Name="spot-sandbox",
            Protocol="TCP",
            Port=TARGET_GROUP_PORT,
            VpcId=vpc_id,
            TargetType="instance",
        )["TargetGroups"][0]["TargetGroupArn"]
        allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
        return Substitutions(
            image_id=image_id,
            elastic_ip_allocation_id=allocation,
            security_group_id=group,
            subnets=subnets,
            target_group_arn=target_group,
        )

    def _image_id(self) -> str:
        """An Amazon Linux 2 AMI from moto's catalogue (any AMI if it has none)."""
        ec2 = self.client("ec2")
        wanted = [{"Name": "name", "Values": [AMI_NAME]}, {"Name": "architecture", "Values": ["x86_64"]}]
        images = ec2.describe_images(Owners=["amazon"], Filters=wanted)["Images"]
        images = images or ec2.describe_images(Owners=["amazon"])["Images"]
        if not images:
            raise RuntimeError("moto lists no AMI")
        return str(max(images, key=lambda i: str(i.get("CreationDate", "")))["ImageId"])

    def _instance_profile(self, name: str) -> None:
        iam = self.client("iam")
        iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=(
                '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                '"Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
            ),
        )
        iam.create_instance_profile(InstanceProfileName=name)
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)

    # ------------------------------------------------------------------------------------ observing
    def instances(self) -> list[ObservedInstance]:
        """Every instance carrying the operator's owner tag, in any state (terminated ones included)."""
        pages = (
            self.client("ec2")
            .get_paginator("describe_instances")
            .paginate(Filters=[{"Name": "tag-key", "Values": [tags.OWNER]}])
        )
        found = []
        for page in pages:
            for reservation in page.get("Reservations", ()):
                for raw in reservation.get("Instances", ()):
                    try:
                        found.append(parse_instance(raw, self.region))
                    except InstanceParseError:
                        continue
        return found

    def elastic_ip_targets(self, allocation_ids: Sequence[str]) -> Mapping[str, str | None]:
        """The instance each Elastic IP is associated with (None: not associated)."""
        if not allocation_ids:
            return {}
        addresses = self.client("ec2").describe_addresses(AllocationIds=list(allocation_ids))["Addresses"]
        return {str(a["AllocationId"]): a.get("InstanceId") for a in addresses}

    def target_group_members(self, arn: str) -> list[str]:
        health = self.client("elbv2").describe_target_health(TargetGroupArn=arn)
        return sorted(str(d["Target"]["Id"]) for d in health.get("TargetHealthDescriptions", ()))
