"""Failover latency in control-plane time, against a moto server, through the operator's real code path.

Three measurements, each over ``--runs`` failovers (default 200), printed as p50/p95/p99:

1. replica: an interruption notice is sent (the agent API request, or the SQS message in the queue
   the notice cycle receives from) -> the Elastic IP is associated with the ready replica
   (AssociateAddress returned). Target p99 <= 0.5 s.
2. acknowledged: the same notice -> the agent API's 202 (or the SQS delete). Both wait until the
   SpotAgent's status holds the notice, so a crash after the answer cannot lose it.
3. replacement: the same notice with no replica -> the replacement's launch call is issued.
   Target p99 <= 0.3 s.

The operator runs in this process exactly as in production (Operator, Reconciler, Actuator, the boto3
adapters, the aiohttp agent API); Kubernetes writes go to memory (they are not on the failover path:
the actuator runs them alongside the AWS calls). The instances' agents are simulated by heartbeats.

    PYTHONPATH=operator:agent:. python bench/failover.py [--runs 200] [--path agent|sqs|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
import boto3

from latency import percentiles  # bench/latency.py, beside this script
from spot_operator.adapters.aws import AwsClients, AwsConfig, AwsEc2, AwsTraffic, SqsNoticeQueue
from spot_operator.agent_api.app import create_app
from spot_operator.agent_api.server import AgentApiServer
from spot_operator.agent_api.tokens import TokenStore
from spot_operator.inmemory import InMemoryObjects
from spot_operator.planning import Pool, Role
from spot_operator.ports import LaunchOutcome, LaunchRequest, PriceObservation, TrafficMove, TrafficTarget
from spot_operator.runtime.agent_sink import OperatorSink
from spot_operator.runtime.loops import NoticeCycle
from spot_operator.runtime.observer import observe_once
from spot_operator.runtime.operator import Operator
from spot_operator.sandbox.moto import ACCESS_KEY, SECRET_KEY, MotoServer
from spot_operator.state import Heartbeat

REGION = "us-east-1"
AMI = "ami-0123456789abcdef0"
PRICES = {
    "m5.large.us-east-1a": 0.040,
    "m5.large.us-east-1b": 0.035,
    "m5a.large.us-east-1a": 0.030,
    "m5a.large.us-east-1b": 0.045,
}


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class TimedTraffic:
    """Wraps the real adapter; remembers when each AssociateAddress returned."""

    def __init__(self, inner: AwsTraffic) -> None:
        self.inner = inner
        self.moved_at: dict[str, float] = {}

    async def move(self, target: TrafficTarget, to_instance: str, from_instance: str | None) -> TrafficMove:
        moved = await self.inner.move(target, to_instance, from_instance)
        self.moved_at[to_instance] = time.perf_counter()
        return moved

    async def serving(self, region: str, allocation_ids: Sequence[str]) -> dict[str, str | None]:
        return await self.inner.serving(region, allocation_ids)


class TimedEc2:
    """Wraps the real adapter; remembers when each launch call was issued."""

    def __init__(self, inner: AwsEc2) -> None:
        self.inner = inner
        self.launched_at: list[float] = []

    async def launch(self, request: LaunchRequest) -> LaunchOutcome:
        self.launched_at.append(time.perf_counter())
        return await self.inner.launch(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def spec(mode: str, eip: str) -> dict[str, Any]:
    return {
        "region": REGION,
        "image": AMI,
        "instanceTypes": ["m5.large", "m5a.large"],
        "zones": ["us-east-1a", "us-east-1b"],
        "mode": mode,
        "traffic": {"elasticIpAllocationId": eip},
        "termination": {"terminateWaitSeconds": 0},
        "policy": {"onDemandFallback": False},
    }


async def ready(op: Operator, key: str, want_standby: bool, within: float = 300.0) -> None:
    """Reconcile with every live instance heartbeating until the agent is Ready (with a Ready standby)."""
    # Each run starts from the same market: the pools earlier runs' notices marked as being reclaimed
    # are usable again (else the runs would soon exhaust the four spot pools and measure on-demand).
    op.unavailable.clear()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        await observe_once(op.ec2, op.traffic, op.agents, op.now())  # the periodic observe, between runs
        state = op.agents[key]
        for inst in list(state.instances.values()):
            if inst.live:
                op.record_heartbeat(key, inst.instance_id, Heartbeat(op.now()))
        await op.reconcile(key)
        await op.settle()
        standby_ok = not want_standby or any(
            r.phase is not None and r.phase.value == "Ready" for r in state.replicas.values()
        )
        if (
            state.status.phase.value == "Ready"
            and standby_ok
            and not any(not s.final for s in state.switches.values())
        ):
            return
        await asyncio.sleep(0.01)
    last = op.last_results.get(key)
    failed = [r.error for r in last.failed] if last else []
    failures = {k: f.message for k, f in op.agents[key].launch_failures.items()}
    raise TimeoutError(f"{key} not ready: {op.agents[key].status.phase} {failed} {failures}")


async def run(moto: MotoServer, runs: int, paths: list[str]) -> dict[str, dict[str, float]]:
    clients = AwsClients(AwsConfig.from_env(moto.url))
    raw: Any = boto3.session.Session().client(
        "ec2",
        region_name=REGION,
        endpoint_url=moto.url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    eip = raw.allocate_address(Domain="vpc")["AllocationId"]
    ec2 = TimedEc2(AwsEc2(clients))
    traffic = TimedTraffic(AwsTraffic(clients))
    clock = Clock()
    op = Operator(ec2, traffic, InMemoryObjects(clock), now=clock.now, tokens=TokenStore())  # type: ignore[arg-type]
    op.book.add_spot(PriceObservation(Pool.parse(n), clock.now(), p) for n, p in PRICES.items())
    op.book.on_demand[REGION] = {"m5.large": 0.096, "m5a.large": 0.086}
    assert op.tokens is not None
    api = AgentApiServer(create_app(op.tokens, OperatorSink(op)), "127.0.0.1", 0)
    await api.start()
    results: dict[str, dict[str, float]] = {}
    try:
        async with aiohttp.ClientSession() as http:
            for path in paths:
                if path in ("agent", "sqs"):
                    moved, acked = await replica_runs(op, http, api, traffic, eip, runs, path, moto)
                    results[f"replica via {path}"] = moved
                    results[f"acknowledged via {path}"] = acked
            results["replacement via agent"] = await replacement_runs(op, http, api, ec2, eip, runs)
    finally:
        await api.stop()
    return results


async def notify_agent(
    http: aiohttp.ClientSession, api: AgentApiServer, op: Operator, key: str, instance_id: str, n: int
) -> None:
    ns, name = key.split("/")
    token = op.tokens.issue(key) if op.tokens is not None else ""
    body = {
        "instanceId": instance_id,
        "kind": "interruption",
        "action": "terminate",
        "noticeTime": datetime.now(UTC).isoformat(),
        "idempotencyKey": f"bench-{n}-{instance_id}",
    }
    async with http.post(
        f"{api.url}/v1/namespaces/{ns}/agents/{name}/notices",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        if resp.status != 202:
            raise RuntimeError(f"agent API answered {resp.status}: {await resp.text()}")


async def replica_runs(
    op: Operator,
    http: aiohttp.ClientSession,
    api: AgentApiServer,
    traffic: TimedTraffic,
    eip: str,
    runs: int,
    path: str,
    moto: MotoServer,
) -> tuple[dict[str, float], dict[str, float]]:
    """Failover onto a Ready standby: notice -> Elastic IP moved, and notice -> acknowledged."""
    key = f"default/bench-replica-{path}"
    op.upsert_agent(
        {
            "metadata": {
                "name": key.split("/")[1],
                "namespace": "default",
                "uid": f"uid-{path}",
                "generation": 1,
            },
            "spec": spec("manual-replica", eip),
        }
    )
    queue = None
    if path == "sqs":
        queue = await sqs_setup(moto)
    samples, acks = [], []
    for n in range(runs):
        await ready(op, key, want_standby=True)
        state = op.agents[key]
        primary = next(i for i in state.instances.values() if i.live and i.role is Role.PRIMARY)
        standby = next(i for i in state.instances.values() if i.live and i.role is Role.REPLICA)
        if queue is None:
            started = time.perf_counter()  # the request is on its way
            await notify_agent(http, api, op, key, primary.instance_id, n)
        else:
            send_event(moto, primary.instance_id)
            started = time.perf_counter()  # the message is in the queue; the cycle receives it
            await NoticeCycle(queue.queue, wait_seconds=5)(op)
        # The 202 (or the SQS delete) comes once the notice is in the SpotAgent's status.
        acks.append(time.perf_counter() - started)
        while standby.instance_id not in traffic.moved_at:  # noqa: ASYNC110 - a 0.5 ms poll is the clock
            await asyncio.sleep(0.0005)
        samples.append(traffic.moved_at[standby.instance_id] - started)
        await op.settle()
    return percentiles(samples), percentiles(acks)


async def replacement_runs(
    op: Operator, http: aiohttp.ClientSession, api: AgentApiServer, ec2: TimedEc2, eip: str, runs: int
) -> dict[str, float]:
    key = "default/bench-replacement"
    op.upsert_agent(
        {
            "metadata": {
                "name": "bench-replacement",
                "namespace": "default",
                "uid": "uid-repl",
                "generation": 1,
            },
            "spec": spec("off", eip),
        }
    )
    samples = []
    for n in range(runs):
        await ready(op, key, want_standby=False)
        state = op.agents[key]
        primary = next(i for i in state.instances.values() if i.live and i.role is Role.PRIMARY)
        before = len(ec2.launched_at)
        started = time.perf_counter()
        await notify_agent(http, api, op, key, primary.instance_id, n)
        while len(ec2.launched_at) == before:  # noqa: ASYNC110 - a 0.5 ms poll is the clock
            await asyncio.sleep(0.0005)
        samples.append(ec2.launched_at[before] - started)
        await op.settle()
    return percentiles(samples)


class SqsSetup:
    def __init__(self, queue: SqsNoticeQueue, url: str) -> None:
        self.queue = queue
        self.url = url


async def sqs_setup(moto: MotoServer) -> SqsSetup:
    sqs: Any = boto3.session.Session().client(
        "sqs",
        region_name=REGION,
        endpoint_url=moto.url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    url = sqs.create_queue(QueueName="bench-interruptions")["QueueUrl"]
    return SqsSetup(SqsNoticeQueue(AwsClients(AwsConfig.from_env(moto.url)), url, region=REGION), url)


def send_event(moto: MotoServer, instance_id: str) -> None:
    sqs: Any = boto3.session.Session().client(
        "sqs",
        region_name=REGION,
        endpoint_url=moto.url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    url = sqs.get_queue_url(QueueName="bench-interruptions")["QueueUrl"]
    event = {
        "version": "0",
        "id": f"bench-{instance_id}",
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:ec2:{REGION}:123456789012:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, "instance-action": "terminate"},
    }
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--path", choices=["agent", "sqs", "both"], default="both")
    args = parser.parse_args()
    paths = ["agent", "sqs"] if args.path == "both" else [args.path]
    with MotoServer() as moto:
        os.environ.update(moto.env())
        results = asyncio.run(run(moto, args.runs, paths))
    targets = {"replica via agent": 0.5, "replica via sqs": 0.5, "replacement via agent": 0.3}
    # The acknowledgement (202, SQS delete) waits for the status write; the agent's timeout is 10 s.
    print(f"{'path':<24}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}{'target p99':>12}")
    for name, r in results.items():
        print(
            f"{name:<24}{r['n']:>6.0f}{r['p50'] * 1000:>10.1f}{r['p95'] * 1000:>10.1f}"
            f"{r['p99'] * 1000:>10.1f}{r['max'] * 1000:>10.1f}"
            + (f"{targets[name] * 1000:>10.0f} ms" if name in targets else f"{'-':>12}")
        )


if __name__ == "__main__":
    main()
