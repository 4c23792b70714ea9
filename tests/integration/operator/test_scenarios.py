"""The operator end to end: kopf on the Kubernetes API emulation, boto3 on a moto server, agents
heartbeating through the agent API. What moto cannot show (boot time, real capacity, real prices) is noted
where it matters: moto instances are running at once and its spot prices are placeholders."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from spot_operator import tags
from tests.fakes.kube import KubeCluster, until
from tests.fakes.moto_server import MotoAws

from .harness import Fleet, agent_manifest, spot_operator, switch_manifest

pytestmark = pytest.mark.timeout(600)


def instances(aws: MotoAws, owner: str | None = None, live: bool = True) -> list[dict[str, Any]]:
    ec2 = aws.boto("ec2")
    found = []
    for page in ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "tag-key", "Values": [tags.OWNER]}]
    ):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                tagged = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
                if owner is not None and tagged.get(tags.OWNER) != owner:
                    continue
                if live and inst["State"]["Name"] not in ("pending", "running"):
                    continue
                found.append({**inst, "tags": tagged})
    return found


def role_of(inst: dict[str, Any]) -> str:
    return str(inst["tags"].get(tags.ROLE))


def eip_target(aws: MotoAws, allocation: str) -> str | None:
    address = aws.boto("ec2").describe_addresses(AllocationIds=[allocation])["Addresses"][0]
    return address.get("InstanceId")


async def get(cluster: KubeCluster, plural: str, name: str) -> dict[str, Any]:
    return await cluster.client.get(plural, name, "default")


async def phase(cluster: KubeCluster, plural: str, name: str) -> str | None:
    status, body = await cluster.client.request("GET", cluster.client.path(plural, "default", name))
    return (body.get("status") or {}).get("phase") if status == 200 else None


def has_phase(cluster: KubeCluster, plural: str, name: str, want: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await phase(cluster, plural, name) == want

    return check


def new_eip(aws: MotoAws) -> str:
    return str(aws.boto("ec2").allocate_address(Domain="vpc")["AllocationId"])


async def test_a_new_spot_agent_gets_a_spot_primary_serving_and_ready(
    kube_api: KubeCluster, aws: MotoAws
) -> None:
    eip = new_eip(aws)
    fleet = Fleet(kube_api)
    async with spot_operator(kube_api, aws, fleet):
        created = await kube_api.client.create("spotagents", agent_manifest("web", "auto-switch", eip))
        uid = created["metadata"]["uid"]
        await until(has_phase(kube_api, "spotagents", "web", "Ready"), within=60)
        assert fleet.rejected == []
        agent = await get(kube_api, "spotagents", "web")
        (primary,) = instances(aws, uid)
        assert role_of(primary) == "primary"
        assert primary["InstanceLifecycle"] == "spot"
        assert primary["MetadataOptions"]["HttpTokens"] == "required"
        status = agent["status"]
        assert status["primary"]["instanceId"] == primary["InstanceId"]
        assert status["primary"]["pool"] in {
            f"{t}.{z}" for t in ("m5.large", "m5a.large") for z in ("us-east-1a", "us-east-1b")
        }
        assert status["primary"]["hourlyPrice"] is not None
        assert eip_target(aws, eip) == primary["InstanceId"]
        conditions = {c["type"]: c for c in status["conditions"]}
        assert conditions["Ready"]["status"] == "True"
        assert conditions["PrimaryHealthy"]["status"] == "True"
        assert all(c["lastTransitionTime"] for c in status["conditions"])
        assert status["observedGeneration"] == agent["metadata"]["generation"]
        token = await kube_api.client.get("secrets", "web-spot-agent-token", "default")
        assert token["metadata"]["ownerReferences"][0]["uid"] == uid


async def test_manual_replica_keeps_a_standby_and_promotion_swaps_roles(
    kube_api: KubeCluster, aws: MotoAws
) -> None:
    eip = new_eip(aws)
    async with spot_operator(kube_api, aws, Fleet(kube_api)):
        created = await kube_api.client.create("spotagents", agent_manifest("game", "manual-replica", eip))
        uid = created["metadata"]["uid"]

        async def standby_ready() -> str | None:
            listed = await kube_api.client.list("replicas", "default")
            ready = [r for r in listed["items"] if (r.get("status") or {}).get("phase") == "Ready"]
            return ready[0]["metadata"]["name"] if len(ready) == 1 else None

        standby = await until(standby_ready, within=120)
        replica = await get(kube_api, "replicas", standby)
        assert replica["metadata"]["ownerReferences"][0]["uid"] == uid
        live = instances(aws, uid)
        primary = next(i for i in live if role_of(i) == "primary")
        spare = next(i for i in live if role_of(i) == "replica")
        assert len(live) == 2
        pool = lambda i: (i["InstanceType"], i["Placement"]["AvailabilityZone"])  # noqa: E731
        assert pool(primary) != pool(spare)

        await kube_api.client.create(
            "switchrequests", switch_manifest("promote", "game", {"kind": "replica", "replicaRef": standby})
        )
        await until(has_phase(kube_api, "switchrequests", "promote", "Completed"), within=120)
        assert eip_target(aws, eip) == spare["InstanceId"]
        assert await phase(kube_api, "replicas", standby) == "Promoted"

        async def new_standby() -> bool:
            name = await standby_ready()
            return name is not None and name != standby

        await until(new_standby, within=120)
        live = instances(aws, uid)
        roles = sorted(role_of(i) for i in live)
        assert roles == ["primary", "replica"]
        assert next(i for i in live if role_of(i) == "primary")["InstanceId"] == spare["InstanceId"]


async def test_switch_to_another_pool_then_to_on_demand(kube_api: KubeCluster, aws: MotoAws) -> None:
    eip = new_eip(aws)
    async with spot_operator(kube_api, aws, Fleet(kube_api)):
        created = await kube_api.client.create("spotagents", agent_manifest("batch", "off", eip))
        uid = created["metadata"]["uid"]
        await until(has_phase(kube_api, "spotagents", "batch", "Ready"), within=120)
        (first,) = instances(aws, uid)
        here = f"{first['InstanceType']}.{first['Placement']['AvailabilityZone']}"
        there = "m5.large.us-east-1b" if here != "m5.large.us-east-1b" else "m5a.large.us-east-1a"
        await kube_api.client.create(
            "switchrequests", switch_manifest("move", "batch", {"kind": "pool", "pool": there})
        )
        await until(has_phase(kube_api, "switchrequests", "move", "Completed"), within=120)
        move = (await get(kube_api, "switchrequests", "move"))["status"]
        assert move["newPool"] == there and move["oldInstanceId"] == first["InstanceId"]
        timings = move["timings"]
        assert (
            timings["launchSeconds"] >= 0
            and timings["cutoverSeconds"] >= 0
            and timings["downtimeSeconds"] == 0
        )
        (now_primary,) = instances(aws, uid)
        assert f"{now_primary['InstanceType']}.{now_primary['Placement']['AvailabilityZone']}" == there
        assert eip_target(aws, eip) == now_primary["InstanceId"]

        await kube_api.client.create("switchrequests", switch_manifest("od", "batch", {"kind": "on-demand"}))
        await until(has_phase(kube_api, "switchrequests", "od", "Completed"), within=120)
        (on_demand,) = instances(aws, uid)
        assert "InstanceLifecycle" not in on_demand  # moto, like AWS, marks only spot instances
        agent = await get(kube_api, "spotagents", "batch")
        assert agent["status"]["primary"]["lifecycle"] == "on-demand"
        assert agent["status"]["lastSwitch"]["name"] == "od"


async def test_an_invalid_switch_is_failed_with_a_reason_and_launches_nothing(
    kube_api: KubeCluster, aws: MotoAws
) -> None:
    async with spot_operator(kube_api, aws, Fleet(kube_api)):
        created = await kube_api.client.create("spotagents", agent_manifest("web", "off"))
        await until(has_phase(kube_api, "spotagents", "web", "Ready"), within=120)
        launches = aws.recorder.calls["ec2:RunInstances"]
        await kube_api.client.create(
            "switchrequests", switch_manifest("bad", "web", {"kind": "pool", "pool": "c5.large.us-east-1a"})
        )
        await until(has_phase(kube_api, "switchrequests", "bad", "Failed"), within=60)
        status = (await get(kube_api, "switchrequests", "bad"))["status"]
        (condition,) = status["conditions"]
        assert condition["reason"] == "InvalidTarget" and "c5.large" in condition["message"]
        assert aws.recorder.calls["ec2:RunInstances"] == launches
        assert len(instances(aws, created["metadata"]["uid"])) == 1


async def test_a_restart_between_launching_and_cutover_finishes_the_switch_with_one_launch(
    kube_api: KubeCluster, aws: MotoAws
) -> None:
    eip = new_eip(aws)
    fleet = Fleet(kube_api)
    async with spot_operator(kube_api, aws, fleet):
        created = await kube_api.client.create("spotagents", agent_manifest("db", "off", eip))
        uid = created["metadata"]["uid"]
        await until(has_phase(kube_api, "spotagents", "db", "Ready"), within=120)
        (first,) = instances(aws, uid)
        fleet.only = {first["InstanceId"]}  # the new instance's agent stays silent: no cutover yet
        here = f"{first['InstanceType']}.{first['Placement']['AvailabilityZone']}"
        there = "m5.large.us-east-1b" if here != "m5.large.us-east-1b" else "m5a.large.us-east-1a"

        async def launching() -> str | None:
            body = await get(kube_api, "switchrequests", "move")
            status = body.get("status") or {}
            return status.get("newInstanceId") if status.get("phase") == "Launching" else None

        await kube_api.client.create(
            "switchrequests", switch_manifest("move", "db", {"kind": "pool", "pool": there})
        )
        new_id = await until(launching, within=120)
    # the operator is gone, mid-switch; a new process starts with empty memory
    fleet.only = None
    async with spot_operator(kube_api, aws, fleet):
        await until(has_phase(kube_api, "switchrequests", "move", "Completed"), within=120)
    live = instances(aws, uid)
    assert [i["InstanceId"] for i in live] == [new_id]
    assert role_of(live[0]) == "primary"
    launched_for_switch = [
        i for i in instances(aws, uid, live=False) if i["tags"].get(tags.PURPOSE) == "switch/move"
    ]
    assert len(launched_for_switch) == 1
    assert eip_target(aws, eip) == new_id


async def test_deleting_a_spot_agent_terminates_its_instances_and_keeps_the_elastic_ip(
    kube_api: KubeCluster, aws: MotoAws
) -> None:
    eip = new_eip(aws)
    async with spot_operator(kube_api, aws, Fleet(kube_api)):
        created = await kube_api.client.create("spotagents", agent_manifest("tmp", "manual-replica", eip))
        uid = created["metadata"]["uid"]
        await until(lambda: len(instances(aws, uid)) == 2 or None, within=120)
        agent = await get(kube_api, "spotagents", "tmp")
        assert "spotoptimizer.io/finalizer" in agent["metadata"]["finalizers"]
        await kube_api.client.delete("spotagents", "tmp", "default")

        async def gone() -> bool:
            status, _ = await kube_api.client.request(
                "GET", kube_api.client.path("spotagents", "default", "tmp")
            )
            return status == 404

        await until(gone, within=120)
        assert instances(aws, uid) == []
        addresses = aws.boto("ec2").describe_addresses(AllocationIds=[eip])["Addresses"]
        assert len(addresses) == 1  # the user's Elastic IP stays allocated


async def test_a_token_secret_without_a_token_is_reported_and_does_not_hold_up_the_agent(
    kube_api: KubeCluster, aws: MotoAws
) -> None:
    """A user-edited token Secret with no ``token`` key: the agent is still reconciled (its primary
    launched), a warning Event says what to do, and once the Secret is deleted the next change of the
    SpotAgent makes a new token."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "web-spot-agent-token", "namespace": "default"},
        "data": {"other": base64.b64encode(b"not a token").decode()},
    }
    await kube_api.client.create("secrets", secret)
    async with spot_operator(kube_api, aws) as running:
        created = await kube_api.client.create("spotagents", agent_manifest("web", "auto-switch"))
        uid = created["metadata"]["uid"]
        await until(lambda: len(instances(aws, uid)) == 1 or None, within=60)

        async def warned() -> list[dict[str, Any]] | None:
            events = (await kube_api.client.list("events", "default"))["items"]
            found = [e for e in events if e.get("reason") == "AgentTokenUnavailable"]
            return found or None

        (event, *_) = await until(warned, within=30)
        assert event["type"] == "Warning" and "delete it for a new token" in event["message"]
        assert event["involvedObject"]["uid"] == uid
        assert running.op.tokens is not None and not running.op.tokens.knows("default/web")

        await kube_api.client.delete("secrets", "web-spot-agent-token", "default")
        await kube_api.client.patch(
            "spotagents", "web", {"spec": {"termination": {"terminateWaitSeconds": 1}}}
        )

        async def token() -> str | None:
            status, body = await kube_api.client.request(
                "GET", kube_api.client.path("secrets", "default", "web-spot-agent-token")
            )
            return (body.get("data") or {}).get("token") if status == 200 else None

        await until(token, within=30)
        assert running.op.tokens is not None and running.op.tokens.knows("default/web")
