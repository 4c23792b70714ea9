"""`spotctl switch` and `spotctl promote`: the SwitchRequests they create; --wait driven by status patches."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tests.fakes.kube import KubeCluster, until

from .conftest import example, flat, run_spotctl

FAST = ["--interval", "0.05"]


def _config(cluster: KubeCluster) -> list[str]:
    return ["--kubeconfig", str(cluster.kubeconfig)]


async def _agents(cluster: KubeCluster) -> None:
    for manifest in ("spotagent-auto-switch.yaml", "spotagent-manual-replica.yaml"):
        await cluster.client.create("spotagents", example(manifest))


async def _switches(cluster: KubeCluster, namespace: str = "default") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await cluster.client.list("switchrequests", namespace))["items"]
    return items


async def _replica(cluster: KubeCluster, name: str, agent: str, phase: str) -> None:
    body = {
        "apiVersion": "spotoptimizer.io/v1alpha1",
        "kind": "Replica",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"agentRef": {"name": agent}, "reason": "manual"},
    }
    await cluster.client.create("replicas", body)
    await cluster.client.patch("replicas", name, {"status": {"phase": phase}}, subresource="status")


async def test_switch_creates_a_request_for_each_kind_of_target(kube_api: KubeCluster) -> None:
    await _agents(kube_api)
    config = _config(kube_api)

    to_pool = await run_spotctl(["switch", "build-server", "--to-pool", "m5a.large.us-east-1c", *config])
    on_demand = await run_spotctl(
        ["switch", "default/build-server", "--on-demand", "--reason", "drift", "--name", "to-od", *config]
    )
    cheapest = await run_spotctl(["switch", "game-server", "--cheapest", "--priority", "90", *config])

    assert (to_pool.exit_code, on_demand.exit_code, cheapest.exit_code) == (0, 0, 0), to_pool.output
    assert "-> pool m5a.large.us-east-1c (reason manual, priority 75)" in to_pool.stdout
    assert "switchrequest default/to-od created" in on_demand.stdout
    by_agent: dict[str, list[dict[str, Any]]] = {}
    for item in await _switches(kube_api):
        by_agent.setdefault(item["spec"]["agentRef"]["name"], []).append(item)
    specs = sorted((s["metadata"]["name"], s["spec"]) for s in by_agent["build-server"])
    generated = next(name for name, _ in specs if name != "to-od")
    assert generated.startswith("build-server-to-pool-")
    assert generated in to_pool.stdout
    assert dict(specs)[generated] == {
        "agentRef": {"name": "build-server"},
        "target": {"kind": "pool", "pool": "m5a.large.us-east-1c"},
        "reason": "manual",
    }
    assert dict(specs)["to-od"] == {
        "agentRef": {"name": "build-server"},
        "target": {"kind": "on-demand"},
        "reason": "drift",
    }
    (game,) = by_agent["game-server"]
    assert game["spec"] == {
        "agentRef": {"name": "game-server"},
        "target": {"kind": "cheapest"},
        "reason": "manual",
        "priority": 90,
    }
    assert game["metadata"]["labels"] == {
        "spotoptimizer.io/agent": "game-server",
        "spotoptimizer.io/created-by": "spotctl",
    }


async def test_switch_refuses_bad_targets_and_unknown_agents(kube_api: KubeCluster) -> None:
    await _agents(kube_api)
    config = _config(kube_api)

    nowhere = await run_spotctl(["switch", "build-server", *config])
    both = await run_spotctl(
        ["switch", "build-server", "--cheapest", "--to-pool", "m5.large.us-east-1a", *config]
    )
    malformed = await run_spotctl(["switch", "build-server", "--to-pool", "us-east-1a", *config])
    unknown = await run_spotctl(["switch", "ghost", "--cheapest", *config])

    assert nowhere.exit_code == both.exit_code == malformed.exit_code == 2  # usage errors
    assert "--to-pool POOL, --on-demand or --cheapest" in flat(nowhere.output)
    assert "--cheapest goes alone" in flat(both.output)
    assert "'us-east-1a': String should match pattern" in flat(malformed.output)
    assert unknown.exit_code == 1
    assert unknown.stderr.strip() == "error: SpotAgent default/ghost not found"
    assert await _switches(kube_api) == []


async def _drive(cluster: KubeCluster, phases: list[dict[str, Any]]) -> None:
    """Play the operator: wait for spotctl's SwitchRequest, then walk its status through ``phases``."""
    (created,) = await until(lambda: _switches(cluster))
    name = created["metadata"]["name"]
    for status in phases:
        await asyncio.sleep(0.15)
        await cluster.client.patch("switchrequests", name, {"status": status}, subresource="status")


async def test_switch_wait_follows_the_phases_to_completed(kube_api: KubeCluster) -> None:
    await _agents(kube_api)
    phases = [
        {"phase": "Launching", "message": "launching in m5a.large.us-east-1c"},
        {"phase": "Ready", "message": "new instance healthy"},
        {"phase": "CuttingOver"},
        {
            "phase": "Completed",
            "message": "switched",
            "oldPool": "m5.large.us-east-1a",
            "newPool": "m5a.large.us-east-1c",
            "oldInstanceId": "i-0old",
            "newInstanceId": "i-0new",
            "timings": {"launchSeconds": 41.5, "cutoverSeconds": 2.25, "downtimeSeconds": 0.5},
            "conditions": [
                {"type": "Complete", "status": "True", "reason": "Switched", "message": "switched"}
            ],
        },
    ]
    command = ["switch", "build-server", "--to-pool", "m5a.large.us-east-1c", "--wait", *FAST]

    result, _ = await asyncio.gather(run_spotctl([*command, *_config(kube_api)]), _drive(kube_api, phases))

    assert result.exit_code == 0, result.output
    seen = re.findall(r"^ *[0-9.]+ s  (\w+)", result.stdout, re.MULTILINE)
    assert seen == ["Pending", "Launching", "Ready", "CuttingOver", "Completed"]
    assert "launching in m5a.large.us-east-1c" in result.stdout
    assert (
        "Completed: m5.large.us-east-1a -> m5a.large.us-east-1c (i-0old -> i-0new); "
        "launch 41.5 s, cutover 2.2 s, downtime 0.5 s"
    ) in result.stdout


async def test_switch_wait_exits_non_zero_with_the_reason_when_it_fails(kube_api: KubeCluster) -> None:
    await _agents(kube_api)
    failed = {
        "phase": "Failed",
        "message": "no spot capacity in m5a.large.us-east-1c",
        "conditions": [
            {
                "type": "Complete",
                "status": "False",
                "reason": "InsufficientCapacity",
                "message": "no spot capacity in m5a.large.us-east-1c",
            }
        ],
    }
    command = ["switch", "build-server", "--to-pool", "m5a.large.us-east-1c", "--wait", *FAST]

    result, _ = await asyncio.gather(
        run_spotctl([*command, *_config(kube_api)]), _drive(kube_api, [{"phase": "Launching"}, failed])
    )

    assert result.exit_code == 1
    assert "Launching" in result.stdout and "Failed" in result.stdout
    assert "Failed: InsufficientCapacity: no spot capacity in m5a.large.us-east-1c" in result.stderr
    assert "Traceback" not in result.output


async def test_switch_wait_gives_up_after_the_timeout(kube_api: KubeCluster) -> None:
    await _agents(kube_api)
    command = ["switch", "game-server", "--cheapest", "--wait", "--timeout", "0.3", *FAST]

    result = await run_spotctl([*command, *_config(kube_api)])

    assert result.exit_code == 1
    assert "still Pending after 0 s; it goes on in the cluster" in result.stderr


async def test_promote_picks_the_only_ready_replica(kube_api: KubeCluster) -> None:
    await _agents(kube_api)
    await _replica(kube_api, "game-server-standby-1", "game-server", "Ready")
    await _replica(kube_api, "game-server-standby-2", "game-server", "Syncing")
    await _replica(kube_api, "build-server-standby", "build-server", "Ready")

    result = await run_spotctl(["promote", "game-server", *_config(kube_api)])

    assert result.exit_code == 0, result.output
    assert "-> replica game-server-standby-1" in result.stdout
    (created,) = await _switches(kube_api)
    assert created["metadata"]["name"].startswith("game-server-promote-")
    assert created["spec"] == {
        "agentRef": {"name": "game-server"},
        "target": {"kind": "replica", "replicaRef": "game-server-standby-1"},
        "reason": "manual",
    }


async def test_promote_explains_why_it_cannot_choose(kube_api: KubeCluster) -> None:
    await _agents(kube_api)
    config = _config(kube_api)
    none_yet = await run_spotctl(["promote", "game-server", *config])
    await _replica(kube_api, "game-server-standby-1", "game-server", "Syncing")
    syncing = await run_spotctl(["promote", "game-server", *config])
    named_syncing = await run_spotctl(["promote", "game-server", "game-server-standby-1", *config])
    await _replica(kube_api, "game-server-standby-2", "game-server", "Ready")
    await _replica(kube_api, "game-server-standby-3", "game-server", "Ready")
    two = await run_spotctl(["promote", "game-server", *config])
    foreign = await run_spotctl(["promote", "build-server", "game-server-standby-2", *config])

    assert {r.exit_code for r in (none_yet, syncing, named_syncing, two, foreign)} == {1}
    assert none_yet.stderr.strip() == "error: SpotAgent game-server has no Ready replica"
    assert "(replicas: game-server-standby-1 (Syncing))" in syncing.stderr
    assert "game-server-standby-1 is Syncing, not Ready" in named_syncing.stderr
    assert "has 2 Ready replicas (game-server-standby-2, game-server-standby-3): name one" in two.stderr
    assert "does not belong to SpotAgent build-server" in foreign.stderr
    assert await _switches(kube_api) == []

    named = await run_spotctl(["promote", "game-server", "game-server-standby-3", *config])
    assert named.exit_code == 0
    (created,) = await _switches(kube_api)
    assert created["spec"]["target"] == {"kind": "replica", "replicaRef": "game-server-standby-3"}
