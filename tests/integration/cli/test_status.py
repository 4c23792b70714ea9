"""`spotctl status` on SpotAgents created in the Kubernetes API emulation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from spot_operator.sandbox.kubeapi import write_kubeconfig
from tests.fakes.kube import KubeCluster, served_kube_api

from .conftest import example, run_spotctl

READY_STATUS: dict[str, Any] = {
    "phase": "Ready",
    "primary": {
        "instanceId": "i-0aaaaaaaaaaaaaaa1",
        "pool": "m5.large.us-east-1a",
        "lifecycle": "spot",
        "hourlyPrice": 0.0312,
        "since": "2024-06-01T10:00:00Z",
    },
    "savings": {"hourlyUsd": 0.0648, "toDateUsd": 12.5, "percent": 67.5},
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "PrimaryRunning", "message": "primary is serving"},
        {"type": "PrimaryHealthy", "status": "True", "reason": "Heartbeat", "message": ""},
        {
            "type": "InterruptionPending",
            "status": "True",
            "reason": "RebalanceRecommendation",
            "message": "AWS recommends moving off m5.large.us-east-1a",
        },
        {"type": "Degraded", "status": "False", "reason": "AsExpected", "message": ""},
    ],
}

DEGRADED_STATUS: dict[str, Any] = {
    "phase": "Degraded",
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "LaunchFailed",
            "message": "no capacity in any pool [InsufficientInstanceCapacity]",
        },
        {"type": "Degraded", "status": "True", "reason": "NoCapacity", "message": "retrying in 60 s"},
    ],
}


async def _agent(cluster: KubeCluster, manifest: str, namespace: str, status: dict[str, Any]) -> None:
    body = example(manifest)
    body["metadata"]["namespace"] = namespace
    await cluster.client.create("spotagents", body)
    name = body["metadata"]["name"]
    await cluster.client.patch("spotagents", name, {"status": status}, namespace, subresource="status")


async def test_status_table_shows_primary_savings_and_troubled_conditions(kube_api: KubeCluster) -> None:
    await _agent(kube_api, "spotagent-auto-switch.yaml", "default", READY_STATUS)
    await _agent(kube_api, "spotagent-manual-replica.yaml", "default", DEGRADED_STATUS)

    result = await run_spotctl(["status", "--kubeconfig", str(kube_api.kubeconfig)])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    build = next(line for line in lines if "default/build-server" in line)
    for cell in ("auto-switch", "Ready", "i-0aaaaaaaaaaaaaaa1", "m5.large.us-east-1a", "spot", "0.0312"):
        assert cell in build
    for cell in ("67.5", "0.0648", "12.50", "InterruptionPending=True RebalanceRecommendation"):
        assert cell in build
    at = next(i for i, line in enumerate(lines) if "default/game-server" in line)
    game, continued = lines[at], lines[at + 1]
    assert "manual-replica" in game and "Degraded" in game
    # One condition per line in the cell.
    assert "Ready=False LaunchFailed" in game and "Degraded=True NoCapacity" in continued
    # Below the table, each of those conditions with its message.
    no_capacity = "no capacity in any pool [InsufficientInstanceCapacity]"  # brackets are not markup
    assert f"default/game-server: Ready=False LaunchFailed: {no_capacity}" in lines
    assert "default/game-server: Degraded=True NoCapacity: retrying in 60 s" in lines
    assert (
        "default/build-server: InterruptionPending=True RebalanceRecommendation: "
        "AWS recommends moving off m5.large.us-east-1a"
    ) in lines
    # Fine conditions stay out of the table.
    assert "PrimaryHealthy" not in result.stdout and "AsExpected" not in result.stdout


async def test_status_json_and_yaml_for_scripts_and_namespace_scoping(kube_api: KubeCluster) -> None:
    await _agent(kube_api, "spotagent-auto-switch.yaml", "default", READY_STATUS)
    await _agent(kube_api, "spotagent-manual-replica.yaml", "team-games", DEGRADED_STATUS)
    config = ["--kubeconfig", str(kube_api.kubeconfig)]

    scoped = await run_spotctl(["status", *config, "-o", "json"])
    everything = await run_spotctl(["status", *config, "-A", "-o", "json"])
    other = await run_spotctl(["status", *config, "-n", "team-games", "-o", "yaml"])

    assert scoped.exit_code == everything.exit_code == other.exit_code == 0
    (only,) = json.loads(scoped.stdout)
    assert (only["namespace"], only["name"], only["mode"], only["phase"]) == (
        "default",
        "build-server",
        "auto-switch",
        "Ready",
    )
    assert only["primary"]["pool"] == "m5.large.us-east-1a"
    assert only["savings"] == {"hourlyUsd": 0.0648, "toDateUsd": 12.5, "percent": 67.5}
    assert [f"{a['namespace']}/{a['name']}" for a in json.loads(everything.stdout)] == [
        "default/build-server",
        "team-games/game-server",
    ]
    (games,) = yaml.safe_load(other.stdout)
    assert games["name"] == "game-server" and games["phase"] == "Degraded"
    assert {c["type"]: c["reason"] for c in games["conditions"]} == {
        "Ready": "LaunchFailed",
        "Degraded": "NoCapacity",
    }


async def test_the_contexts_namespace_is_the_default(kube_api: KubeCluster, tmp_path: Path) -> None:
    await _agent(kube_api, "spotagent-auto-switch.yaml", "default", READY_STATUS)
    await _agent(kube_api, "spotagent-manual-replica.yaml", "team-games", DEGRADED_STATUS)
    games = write_kubeconfig(tmp_path / "games-kubeconfig", kube_api.url, namespace="team-games")

    result = await run_spotctl(["status", "--kubeconfig", str(games), "-o", "json"])

    assert [a["name"] for a in json.loads(result.stdout)] == ["game-server"]


async def test_status_with_no_agents_says_so(kube_api: KubeCluster) -> None:
    result = await run_spotctl(["status", "--kubeconfig", str(kube_api.kubeconfig), "-n", "empty"])
    assert result.exit_code == 0
    assert "no SpotAgents in namespace empty" in result.stdout


async def test_missing_crds_are_named_in_one_line(tmp_path: Path) -> None:
    async with served_kube_api(tmp_path, crds=[]) as bare:
        result = await run_spotctl(["status", "--kubeconfig", str(bare.kubeconfig)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "CRDs not installed" in result.stderr and "spotagents.spotoptimizer.io" in result.stderr
    assert "Traceback" not in result.output
