"""Interruptions end to end: notices through the agent API (as the on-instance spot-agent sends them) and
through EventBridge -> SQS on the moto server, into the real operator, out to EC2 and the Elastic IP.

moto starts instances ``running`` at once and never refuses capacity; the refusals here come from the
fault-injecting proxy in front of it (tests/integration/aws/proxy.py), answered the way EC2 answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest
from sqlalchemy import create_engine, func, make_url, select

from spot_agent.protocol import NoticeKind
from spot_operator.sandbox.fleet import Fleet
from spot_operator.storage.models import InterruptionRow, SwitchRow
from tests.fakes.kube import KubeCluster, until
from tests.fakes.moto_server import MotoAws
from tests.fakes.postgres import TcpProxy
from tests.integration.aws.proxy import running_proxy
from tests.integration.aws.test_queue import interruption_queue, put

from .harness import RunningSpotOperator, agent_manifest, spot_operator
from .test_scenarios import eip_target, get, has_phase, instances, new_eip, role_of

pytestmark = pytest.mark.timeout(600)

KEY = "default/{}"


def emergencies(op: RunningSpotOperator, name: str) -> list[Any]:
    state = op.op.agents[KEY.format(name)]
    return [s for s in state.switches.values() if s.spec.reason.value == "emergency"]


def primary_of(aws: MotoAws, uid: str) -> dict[str, Any]:
    (primary,) = [i for i in instances(aws, uid) if role_of(i) == "primary"]
    return primary


def pool_of(inst: Mapping[str, Any]) -> str:
    return f"{inst['InstanceType']}.{inst['Placement']['AvailabilityZone']}"


async def standby_ready(cluster: KubeCluster) -> str | None:
    listed = await cluster.client.list("replicas", "default")
    ready = [r for r in listed["items"] if (r.get("status") or {}).get("phase") == "Ready"]
    return str(ready[0]["status"]["instanceId"]) if len(ready) == 1 else None


async def report(
    fleet: Fleet, running: RunningSpotOperator, name: str, instance: str, kind: NoticeKind
) -> int:
    answer = await fleet.notify(running.agent_api, "default", name, instance, kind, running.op.now())
    return answer.status


async def test_an_interruption_from_agent_and_sqs_promotes_the_standby_once(
    kube_api: KubeCluster, aws: MotoAws
) -> None:
    eip = new_eip(aws)
    queue_url, _ = interruption_queue(aws)
    fleet = Fleet(kube_api)
    async with spot_operator(kube_api, aws, fleet, queue_url=queue_url) as running:
        created = await kube_api.client.create("spotagents", agent_manifest("game", "manual-replica", eip))
        uid = created["metadata"]["uid"]
        standby = await until(lambda: standby_ready(kube_api), within=120)
        old = primary_of(aws, uid)["InstanceId"]
        assert eip_target(aws, eip) == old

        # The agent on the instance and EventBridge both report the same 2-minute notice.
        assert await report(fleet, running, "game", old, NoticeKind.INTERRUPTION) == 202
        put(
            aws,
            "aws.ec2",
            "EC2 Spot Instance Interruption Warning",
            {"instance-id": old, "instance-action": "terminate"},
        )
        await until(lambda: eip_target(aws, eip) == standby, within=60)

        async def old_gone() -> bool:
            return old not in {i["InstanceId"] for i in instances(aws, uid)}

        await until(old_gone, within=60)  # terminateWaitSeconds 0: drained and terminated at once
        assert primary_of(aws, uid)["InstanceId"] == standby

        async def sqs_copy_seen() -> bool:
            sqs = aws.boto("sqs")
            attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
            return attributes["ApproximateNumberOfMessages"] == "0" and (
                attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
            )

        await until(sqs_copy_seen, within=60)  # the queue's copy was received and deleted
        (failover,) = emergencies(running, "game")
        await until(has_phase(kube_api, "switchrequests", failover.name, "Completed"), within=60)
        assert failover.status.new_instance_id == standby

        new_standby = await until(
            lambda: _other_standby(kube_api, standby), within=120
        )  # manual-replica keeps one standby: a new one replaces the promoted one
        assert new_standby != standby
        agent = await get(kube_api, "spotagents", "game")
        assert agent["status"]["primary"]["instanceId"] == standby
        assert agent["status"]["lastSwitch"]["reason"] == "emergency"


async def _other_standby(cluster: KubeCluster, promoted: str) -> str | None:
    name = await standby_ready(cluster)
    return name if name is not None and name != promoted else None


@pytest.mark.parametrize("action", ["standby", "replace"])
async def test_a_rebalance_in_auto_switch_launches_a_replica_in_another_pool(
    kube_api: KubeCluster, aws: MotoAws, action: str
) -> None:
    """'standby' keeps the replica until the interruption notice; 'replace' (the default, as EC2 Capacity
    Rebalancing does) moves onto it once it is Ready."""
    eip = new_eip(aws)
    fleet = Fleet(kube_api)
    manifest = agent_manifest("web", "auto-switch", eip, policy={"rebalanceAction": action})
    async with spot_operator(kube_api, aws, fleet) as running:
        created = await kube_api.client.create("spotagents", manifest)
        uid = created["metadata"]["uid"]
        await until(has_phase(kube_api, "spotagents", "web", "Ready"), within=120)
        primary = primary_of(aws, uid)
        assert await standby_ready(kube_api) is None  # auto-switch keeps no standby until AWS warns

        assert await report(fleet, running, "web", primary["InstanceId"], NoticeKind.REBALANCE) == 202
        if action == "standby":
            standby = await until(lambda: standby_ready(kube_api), within=120)
            spare = next(i for i in instances(aws, uid) if i["InstanceId"] == standby)
            assert role_of(spare) == "replica"
            assert pool_of(spare) != pool_of(primary)  # the safest *other* pool
            assert eip_target(aws, eip) == primary["InstanceId"]  # a recommendation moves no traffic
            return

        async def moved() -> dict[str, Any] | None:
            live = instances(aws, uid)
            if [i["InstanceId"] for i in live] == [primary["InstanceId"]] or len(live) != 1:
                return None
            return live[0]

        new = await until(moved, within=120)  # the old primary drained and terminated
        assert role_of(new) == "primary" and pool_of(new) != pool_of(primary)
        assert eip_target(aws, eip) == new["InstanceId"]


async def test_an_interruption_without_a_standby_launches_a_replacement_in_another_pool(
    kube_api: KubeCluster, aws: MotoAws
) -> None:
    eip = new_eip(aws)
    queue_url, _ = interruption_queue(aws)
    async with spot_operator(kube_api, aws, Fleet(kube_api), queue_url=queue_url) as running:
        manifest = agent_manifest("batch", "off", eip, policy={"onDemandFallback": False})
        created = await kube_api.client.create("spotagents", manifest)
        uid = created["metadata"]["uid"]
        await until(has_phase(kube_api, "spotagents", "batch", "Ready"), within=120)
        old = primary_of(aws, uid)
        put(
            aws,
            "aws.ec2",
            "EC2 Spot Instance Interruption Warning",
            {"instance-id": old["InstanceId"], "instance-action": "terminate"},
        )

        async def replaced() -> dict[str, Any] | None:
            live = [i for i in instances(aws, uid) if role_of(i) == "primary"]
            return live[0] if len(live) == 1 and live[0]["InstanceId"] != old["InstanceId"] else None

        new = await until(replaced, within=120)
        await until(lambda: eip_target(aws, eip) == new["InstanceId"], within=60)
        assert pool_of(new) != pool_of(old)
        assert new.get("InstanceLifecycle") == "spot"
        assert len(emergencies(running, "batch")) == 1


async def test_with_every_spot_pool_out_of_capacity_the_replacement_is_on_demand(
    kube_api: KubeCluster, aws: MotoAws
) -> None:
    eip = new_eip(aws)
    fleet = Fleet(kube_api)
    with running_proxy(aws.url) as proxy:
        async with spot_operator(kube_api, aws, fleet, endpoint_url=proxy.url) as running:
            manifest = agent_manifest("ci", "off", eip, policy={"onDemandFallback": False})
            created = await kube_api.client.create("spotagents", manifest)
            uid = created["metadata"]["uid"]
            await until(has_phase(kube_api, "spotagents", "ci", "Ready"), within=120)
            old = primary_of(aws, uid)["InstanceId"]
            refused = proxy.fail(
                "RunInstances",
                "InsufficientInstanceCapacity",
                "There is no Spot capacity available that matches your request.",
                500,
                when=lambda p: p.get("InstanceMarketOptions.MarketType") == "spot",
                times=None,
            )
            assert await report(fleet, running, "ci", old, NoticeKind.INTERRUPTION) == 202

            async def on_demand() -> dict[str, Any] | None:
                live = [i for i in instances(aws, uid) if role_of(i) == "primary"]
                return live[0] if len(live) == 1 and live[0]["InstanceId"] != old else None

            new = await until(on_demand, within=120)
            assert "InstanceLifecycle" not in new  # AWS marks only spot instances
            assert refused.hits >= 1  # spot was asked for first, and refused
            await until(lambda: eip_target(aws, eip) == new["InstanceId"], within=60)
            await until(has_phase(kube_api, "spotagents", "ci", "Degraded"), within=60)
            agent = await get(kube_api, "spotagents", "ci")
            assert agent["status"]["primary"]["lifecycle"] == "on-demand"
            conditions = {c["type"]: c for c in agent["status"]["conditions"]}
            assert conditions["Degraded"]["reason"] == "OnDemandFallback"


async def test_a_notice_for_an_unknown_instance_is_404_and_changes_nothing(
    kube_api: KubeCluster, aws: MotoAws
) -> None:
    fleet = Fleet(kube_api)
    async with spot_operator(kube_api, aws, fleet) as running:
        created = await kube_api.client.create("spotagents", agent_manifest("web", "off"))
        await until(has_phase(kube_api, "spotagents", "web", "Ready"), within=120)
        launches = aws.recorder.calls["ec2:RunInstances"]
        status = await report(fleet, running, "web", "i-0000000000000dead", NoticeKind.INTERRUPTION)
        assert status == 404
        assert emergencies(running, "web") == []
        assert aws.recorder.calls["ec2:RunInstances"] == launches
        assert len(instances(aws, created["metadata"]["uid"])) == 1


@pytest.mark.postgres
async def test_failover_completes_with_the_database_stopped_and_its_records_arrive_later(
    kube_api: KubeCluster, aws: MotoAws, database_url: str, postgres_proxy: TcpProxy
) -> None:
    await postgres_proxy.start()
    through_proxy = make_url(database_url).set(host="127.0.0.1", port=postgres_proxy.port)
    eip = new_eip(aws)
    fleet = Fleet(kube_api)
    dsn = through_proxy.render_as_string(hide_password=False)
    async with spot_operator(kube_api, aws, fleet, database_url=dsn) as running:
        created = await kube_api.client.create("spotagents", agent_manifest("db", "manual-replica", eip))
        uid = created["metadata"]["uid"]
        standby = await until(lambda: standby_ready(kube_api), within=120)
        old = primary_of(aws, uid)["InstanceId"]

        await postgres_proxy.stop()  # PostgreSQL is away: connections refused
        assert await report(fleet, running, "db", old, NoticeKind.INTERRUPTION) == 202
        await until(lambda: eip_target(aws, eip) == standby, within=60)
        (failover,) = emergencies(running, "db")
        await until(has_phase(kube_api, "switchrequests", failover.name, "Completed"), within=60)
        async with aiohttp.ClientSession() as http, http.get(f"{running.health}/readyz") as resp:
            assert resp.status == 200  # the operator stays up and leading

        await postgres_proxy.start()  # back: the buffered records are written

        engine = create_engine(database_url)
        try:

            def counted() -> bool:
                with engine.connect() as conn:
                    notices = conn.execute(
                        select(func.count())
                        .select_from(InterruptionRow)
                        .where(InterruptionRow.instance_id == old)
                    ).scalar_one()
                    moves = conn.execute(
                        select(func.count())
                        .select_from(SwitchRow)
                        .where(SwitchRow.switch_name == failover.name)
                    ).scalar_one()
                return notices == 1 and moves == 1

            await until(counted, within=60)
        finally:
            engine.dispose()
