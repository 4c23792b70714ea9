"""The real operator process in the test's loop: kopf handlers on the Kubernetes API emulation, the boto3
adapters on a moto server, and a simulated fleet of on-instance agents heartbeating through the agent API
with the tokens the operator put in Secrets."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from spot_operator.adapters.aws import AwsEc2, AwsSpotPrices, AwsTraffic, SqsNoticeQueue
from spot_operator.adapters.kube import Connection
from spot_operator.main import Wiring, run
from spot_operator.runtime.operator import Operator
from spot_operator.sandbox.fleet import Fleet
from spot_operator.sandbox.runner import operator_settings
from tests.fakes.kube import KubeCluster, until
from tests.fakes.moto_server import MotoAws

AMI = "ami-0123456789abcdef0"


def agent_manifest(name: str, mode: str, eip: str | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "spotoptimizer.io/v1alpha1",
        "kind": "SpotAgent",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "region": "us-east-1",
            "image": AMI,
            "instanceTypes": ["m5.large", "m5a.large"],
            "zones": ["us-east-1a", "us-east-1b"],
            "mode": mode,
            "termination": {"terminateWaitSeconds": 0},
            **spec,
        },
    }
    if eip:
        body["spec"]["traffic"] = {"elasticIpAllocationId": eip}
    return body


def switch_manifest(name: str, agent: str, target: dict[str, Any], reason: str = "manual") -> dict[str, Any]:
    return {
        "apiVersion": "spotoptimizer.io/v1alpha1",
        "kind": "SwitchRequest",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"agentRef": {"name": agent}, "target": target, "reason": reason},
    }


@dataclass
class RunningSpotOperator:
    op: Operator
    task: asyncio.Task[int]
    stop: asyncio.Event
    agent_api: str
    health: str


def wiring_for(
    cluster: KubeCluster, aws: MotoAws, queue_url: str | None = None, endpoint_url: str | None = None
) -> Wiring:
    """The AWS adapters on the moto server, or on a fault-injecting proxy in front of it."""
    clients = aws.clients(endpoint_url)
    queue = SqsNoticeQueue(clients, queue_url, region=aws.region) if queue_url else None
    return Wiring(
        connection=Connection(server=cluster.url),
        ec2=AwsEc2(clients),
        traffic=AwsTraffic(clients),
        prices=AwsSpotPrices(clients),
        queue=queue,
        ignored_tasks=cluster.api.server_tasks,
    )


@contextlib.asynccontextmanager
async def spot_operator(
    cluster: KubeCluster,
    aws: MotoAws,
    fleet: Fleet | None = None,
    database_url: str | None = None,
    queue_url: str | None = None,
    endpoint_url: str | None = None,
    leader_election: bool = False,
) -> AsyncIterator[RunningSpotOperator]:
    """Start ``main.run`` in this loop; stop it (gracefully) when the block ends. Standalone unless
    ``leader_election``: then it first takes the Lease in ``POD_NAMESPACE`` (or "default"), renews it while it
    runs and hands it over when it stops, as a replica of the chart's Deployment does."""
    settings = operator_settings(database_url)
    if leader_election:
        settings = settings.model_copy(update={"standalone": False})
    stop = asyncio.Event()
    started: list[Operator] = []
    wiring = wiring_for(cluster, aws, queue_url, endpoint_url)
    task = asyncio.create_task(run(settings, wiring, stop, started.append))
    api = f"http://127.0.0.1:{settings.agent_api_port}"
    health = f"http://127.0.0.1:{settings.health_port}"

    async def ready() -> bool:
        if task.done():
            task.result()  # raise what killed it
        try:
            async with aiohttp.ClientSession() as http, http.get(f"{health}/readyz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    await until(ready, within=60)
    fleet_task = asyncio.create_task(fleet.run(started, [api])) if fleet is not None else None
    try:
        yield RunningSpotOperator(started[0], task, stop, api, health)
    finally:
        if fleet_task is not None:
            fleet_task.cancel()
            await asyncio.gather(fleet_task, return_exceptions=True)
        stop.set()
        code = await asyncio.wait_for(task, 60)
        assert code == 0, f"operator exited with {code}"
        gc.collect()  # whatever the operator left unclosed warns here, in the test that ran it
