"""kopf on the emulation: create, field change, status write, timer and deletion behave as on a cluster."""

from __future__ import annotations

from typing import Any

import kopf

from tests.fakes.kube import KubeCluster, run_operator, until
from tests.integration.kubeapi import smoke_operator as smoke

FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
WITHIN = 60.0  # generous: the machines running CI are shared


def _calls(handler: str) -> list[tuple[str, str, Any]]:
    return [call for call in smoke.CALLS if call[0] == handler]  # smoke.CALLS: the list of the loaded module


async def test_kopf_lifecycle_on_the_emulation(kube_api: KubeCluster) -> None:
    client, api = kube_api.client, kube_api.api

    def agent() -> dict[str, Any]:
        return api.find("spotagents", "default", "a1") or {}

    async with run_operator(kube_api, modules=["tests.integration.kubeapi.smoke_operator"]):
        created = await client.create(
            "spotagents", {"metadata": {"name": "a1"}, "spec": {"region": "us-east-1"}}
        )

        # Create: the handler runs once; kopf's finalizer (a JSON patch with a version test) and its
        # status write (through /status) both land.
        await until(lambda: agent().get("status", {}).get("phase") == "Created", within=WITHIN)
        assert _calls("create") == [("create", "a1", 1)]
        assert FINALIZER in agent()["metadata"]["finalizers"]
        json_patches = [
            r for r in api.request_log if r.headers.get("Content-Type") == "application/json-patch+json"
        ]
        assert any(
            op["op"] == "test" and op["path"] == "/metadata/resourceVersion"
            for r in json_patches
            for op in r.data
        )

        # A field change: generation 2, the update handler fires once with the diff.
        patched = await client.patch("spotagents", "a1", {"spec": {"mode": "off"}})
        assert patched["metadata"]["generation"] == 2
        await until(lambda: _calls("update"), within=WITHIN)
        assert _calls("update") == [("update", "a1", (2, [["spec", "mode"]]))]

        # A status write: no generation bump, no update handler, while timers keep running.
        await client.patch("spotagents", "a1", {"status": {"observed": "yes"}}, subresource="status")
        ticks = len(_calls("timer"))
        await until(lambda: len(_calls("timer")) >= ticks + 2, within=WITHIN)
        assert len(_calls("update")) == 1
        assert agent()["metadata"]["generation"] == 2
        assert agent()["status"]["ticked"] is True and agent()["status"]["observed"] == "yes"

        # Deletion: the delete handler runs, kopf removes its finalizer, the object goes.
        await client.delete("spotagents", "a1")
        await until(lambda: api.find("spotagents", "default", "a1") is None, within=WITHIN)
        assert _calls("delete") == [("delete", "a1", None)]

    posted = [event for event in api.select("events", "default") if event["involvedObject"]["name"] == "a1"]
    assert [(event["reason"], event["message"], event["type"]) for event in posted] == [
        ("SmokeCreated", "a1 seen", "Normal")
    ]
    assert posted[0]["involvedObject"]["uid"] == created["metadata"]["uid"]


async def test_a_registry_and_namespaces(kube_api: KubeCluster) -> None:
    registry = kopf.OperatorRegistry()

    @kopf.on.create("spotoptimizer.io", "v1alpha1", "replicas", id="mark", registry=registry)
    def mark(patch: kopf.Patch, **_: Any) -> None:
        patch.status["phase"] = "Seen"

    client, api = kube_api.client, kube_api.api
    for namespace in ("team-a", "team-b"):
        await client.create("replicas", {"metadata": {"name": "r1"}, "spec": {}}, namespace=namespace)

    async with run_operator(kube_api, registry=registry, namespaces=["team-a"]):
        await until(lambda: (api.find("replicas", "team-a", "r1") or {}).get("status"), within=WITHIN)

    assert api.find("replicas", "team-a", "r1")["status"] == {"phase": "Seen"}  # type: ignore[index]
    assert "status" not in api.find("replicas", "team-b", "r1")  # type: ignore[operator]
