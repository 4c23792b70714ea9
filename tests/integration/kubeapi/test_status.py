"""The status subresource: the object and its ``/status`` each change only their own part."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.kube import KubeApiError, KubeCluster

AGENT: dict[str, Any] = {"metadata": {"name": "a1"}, "spec": {"region": "us-east-1"}}


async def test_create_drops_the_status(kube_api: KubeCluster) -> None:
    created = await kube_api.client.create("spotagents", {**AGENT, "status": {"phase": "Ready"}})
    assert "status" not in created
    assert "status" not in kube_api.api.find("spotagents", "default", "a1")  # type: ignore[operator]


async def test_patching_the_object_keeps_the_stored_status(kube_api: KubeCluster) -> None:
    client = kube_api.client
    await client.create("spotagents", AGENT)
    await client.patch("spotagents", "a1", {"status": {"phase": "Ready"}}, subresource="status")

    patched = await client.patch("spotagents", "a1", {"spec": {"mode": "off"}, "status": {"phase": "Failed"}})

    assert patched["status"] == {"phase": "Ready"}
    assert patched["spec"]["mode"] == "off"


async def test_removing_the_status_through_the_object_does_nothing(kube_api: KubeCluster) -> None:
    client = kube_api.client
    await client.create("spotagents", AGENT)
    with_status = await client.patch("spotagents", "a1", {"status": {"phase": "Ready"}}, subresource="status")
    same = await client.patch("spotagents", "a1", {"status": None})
    assert same == with_status


async def test_patching_status_changes_only_status_and_not_generation(kube_api: KubeCluster) -> None:
    client = kube_api.client
    created = await client.create("spotagents", AGENT)

    patch = {"status": {"phase": "Ready"}, "spec": {"mode": "off"}, "metadata": {"labels": {"sneaky": "yes"}}}
    patched = await client.patch("spotagents", "a1", patch, subresource="status")

    assert patched["status"] == {"phase": "Ready"}
    assert patched["spec"] == created["spec"]
    assert "labels" not in patched["metadata"]
    assert patched["metadata"]["generation"] == created["metadata"]["generation"] == 1
    assert int(patched["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


async def test_json_patch_of_status_with_a_version_test(kube_api: KubeCluster) -> None:
    client = kube_api.client
    created = await client.create("spotagents", AGENT)
    version = created["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": version},
        {"op": "add", "path": "/status", "value": {"phase": "Ready"}},
    ]
    patched = await client.patch("spotagents", "a1", ops, subresource="status", kind="json")
    assert patched["status"] == {"phase": "Ready"}
    with pytest.raises(KubeApiError) as error:  # the same version test again: the object moved on
        await client.patch("spotagents", "a1", ops, subresource="status", kind="json")
    assert error.value.status == 422


async def test_put_of_status_replaces_only_status(kube_api: KubeCluster) -> None:
    client = kube_api.client
    created = await client.create("spotagents", AGENT)
    body = {
        "metadata": {"name": "a1", "resourceVersion": created["metadata"]["resourceVersion"]},
        "spec": {"region": "ignored"},
        "status": {"phase": "Launching"},
    }
    replaced = await client.replace("spotagents", "a1", body, subresource="status")
    assert replaced["status"] == {"phase": "Launching"}
    assert replaced["spec"] == {"region": "us-east-1"}


async def test_get_of_status_returns_the_whole_object(kube_api: KubeCluster) -> None:
    created = await kube_api.client.create("spotagents", AGENT)
    assert await kube_api.client.get("spotagents", "a1", subresource="status") == created


async def test_status_of_a_resource_without_the_subresource_is_404(kube_api: KubeCluster) -> None:
    await kube_api.client.create("kopfpeerings", {"metadata": {"name": "default"}})
    with pytest.raises(KubeApiError) as error:
        await kube_api.client.patch("kopfpeerings", "default", {"status": {}}, subresource="status")
    assert error.value.status == 404


async def test_without_the_subresource_status_is_an_ordinary_field(kube_api: KubeCluster) -> None:
    """kopf's peering objects keep their peers in ``status`` and have no status subresource."""
    created = await kube_api.client.create(
        "kopfpeerings", {"metadata": {"name": "default"}, "status": {"p": {}}}
    )
    patched = await kube_api.client.patch("kopfpeerings", "default", {"status": {"q": {"priority": 0}}})
    assert created["status"] == {"p": {}}
    assert patched["status"] == {"p": {}, "q": {"priority": 0}}
    assert patched["metadata"]["generation"] == 2  # a CR without the subresource counts status changes


async def test_namespaces_start_active(kube_api: KubeCluster) -> None:
    namespace = await kube_api.client.create(
        "namespaces", {"metadata": {"name": "team-a"}, "status": {"x": 1}}
    )
    assert namespace["status"] == {"phase": "Active"}
    assert namespace["spec"] == {"finalizers": ["kubernetes"]}
