"""The operator as users run it: the image from the Dockerfile, installed with the Helm chart into a real
cluster (kind), AWS played by a moto server in the same cluster. The test process plays the on-instance
spot-agent: it heartbeats through a port-forward to the chart's agent-API Service with the token from the
agent's Secret, as the agent does from EC2 through the Service's load balancer.

What this proves beyond the integration tests (which run kopf against an API emulation): the image starts
and runs as the chart configures it (non-root, read-only root filesystem, env settings); the chart's RBAC
lets it watch, patch status, write Secrets, Events and its Lease; the real API server accepts the CRDs
(schema, CEL rules, status subresource) and the objects the operator writes; leader election on a real
Lease; finalizers and deletion as the real API server does them. What it cannot prove: real EC2 (capacity,
boot time, prices, interruptions), IRSA, an NLB in front of the agent API.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config

from spot_agent.protocol import Health, HeartbeatReport, report_path
from spot_operator import tags
from tests.e2e.support import (
    ACCESS_KEY,
    MOTO_PORT,
    NAMESPACE,
    REGION,
    SECRET_KEY,
    WORKLOADS,
    Kube,
    spot_agent,
    until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

AGENT_API_PORT = 8443  # the chart's agentApi.service.port
LEASE = "spot-optimizer"  # the chart's peering.name

PortForward = Callable[[str, int], AbstractContextManager[int]]


def ec2_client(port: int) -> Any:
    session: Any = boto3.session.Session()
    return session.client(
        "ec2",
        region_name=REGION,
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"mode": "standard", "total_max_attempts": 3}),
    )


def owned_instances(ec2: Any, owner: str) -> list[dict[str, Any]]:
    """Every instance tagged as the SpotAgent's (any state), straight from moto."""
    found = []
    filters = [{"Name": f"tag:{tags.OWNER}", "Values": [owner]}]
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            found.extend(reservation["Instances"])
    return found


def condition(agent: dict[str, Any], kind: str) -> dict[str, Any]:
    conditions = (agent.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), {})


def heartbeat(api: str, name: str, token: str, instance_id: str) -> int:
    """One heartbeat as spot-agent sends it; the HTTP status."""
    beat = HeartbeatReport(
        instance_id=instance_id,
        agent_version="e2e",
        health=Health.OK,
        sync_progress=100,
        sent_at=datetime.now(UTC),
        idempotency_key=f"e2e-{instance_id}-{datetime.now(UTC).timestamp():.3f}",
    )
    request = urllib.request.Request(
        api + report_path(WORKLOADS, name, beat),
        data=beat.to_json(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture
def moto_ec2(port_forward: PortForward) -> Iterator[Any]:
    with port_forward("svc/moto", MOTO_PORT) as port:
        yield ec2_client(port)


@pytest.fixture
def agent_api(port_forward: PortForward, release: str) -> Iterator[str]:
    with port_forward(f"svc/{release}-agent-api", AGENT_API_PORT) as port:
        yield f"http://127.0.0.1:{port}"


def test_the_chart_runs_one_leading_operator(kube: Kube, release: str) -> None:
    deployment = kube.json("get", "deployment", release, "--namespace", NAMESPACE)
    assert deployment["status"].get("readyReplicas") == 1
    (pod,) = kube.json(
        "get", "pods", "--namespace", NAMESPACE, "--selector", f"app.kubernetes.io/instance={release}"
    )["items"]
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    lease = kube.json("get", "lease", LEASE, "--namespace", NAMESPACE)
    assert lease["spec"]["holderIdentity"] == pod["metadata"]["name"]
    for crd in ("spotagents", "replicas", "switchrequests"):
        served = kube.json("get", "crd", f"{crd}.spotoptimizer.io")
        assert served["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_a_spot_agent_gets_a_primary_in_moto_becomes_ready_and_its_instances_go_with_it(
    kube: Kube, release: str, moto_ec2: Any, agent_api: str
) -> None:
    name = "e2e-web"

    def explain() -> str:
        agent = kube.get("spotagent", name, WORKLOADS)
        status = json.dumps((agent or {}).get("status"), indent=1)
        return f"SpotAgent status: {status}\noperator logs:\n{kube.logs(f'deployment/{release}', NAMESPACE)}"

    kube.apply(spot_agent(name))
    uid = until(
        lambda: (kube.get("spotagent", name, WORKLOADS) or {}).get("metadata", {}).get("uid"), 30, explain
    )

    def primary_id() -> str | None:
        agent = kube.get("spotagent", name, WORKLOADS) or {}
        return ((agent.get("status") or {}).get("primary") or {}).get("instanceId")

    instance_id = until(primary_id, 180, lambda: "no primary in the status; " + explain())
    secret = until(
        lambda: kube.get("secret", f"{name}-spot-agent-token", WORKLOADS),
        60,
        lambda: "no token Secret; " + explain(),
    )
    assert secret["metadata"]["ownerReferences"][0]["uid"] == uid
    token = base64.b64decode(secret["data"]["token"]).decode()

    answers: list[int] = []

    def ready_after_a_heartbeat() -> bool:
        answers.append(heartbeat(agent_api, name, token, instance_id))
        agent = kube.get("spotagent", name, WORKLOADS) or {}
        return condition(agent, "Ready").get("status") == "True"

    until(
        ready_after_a_heartbeat, 180, lambda: f"not Ready; heartbeats answered {answers[-5:]}; " + explain()
    )
    assert answers[-1] == 200, answers  # the agent API took the heartbeat that made it Ready

    agent = kube.json("get", "spotagent", name, "--namespace", WORKLOADS)
    assert agent["status"]["phase"] == "Ready"
    assert agent["status"]["primary"]["instanceId"] == instance_id
    assert condition(agent, "PrimaryHealthy")["status"] == "True"
    assert agent["status"]["observedGeneration"] == agent["metadata"]["generation"]
    (instance,) = [i for i in owned_instances(moto_ec2, uid) if i["State"]["Name"] in ("pending", "running")]
    assert instance["InstanceId"] == instance_id
    assert instance.get("InstanceLifecycle") == "spot"
    assert {t["Key"]: t["Value"] for t in instance["Tags"]}[tags.ROLE] == "primary"

    kube("delete", "spotagent", name, "--namespace", WORKLOADS, "--wait=true", "--timeout=180s")
    assert kube.get("spotagent", name, WORKLOADS) is None  # the finalizer let go
    states = {i["InstanceId"]: i["State"]["Name"] for i in owned_instances(moto_ec2, uid)}
    assert states and all(state in ("shutting-down", "terminated") for state in states.values()), states
    until(
        lambda: kube.get("secret", f"{name}-spot-agent-token", WORKLOADS) is None,
        60,
        lambda: "the token Secret outlived its SpotAgent (garbage collection by ownerReference)",
    )
