"""Deletion, finalizers, owners and garbage collection, namespaces, CRDs, discovery and paging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.kube import KubeApiError, KubeCluster, served_kube_api, until

REPO = Path(__file__).resolve().parents[3]
HOLD = "example.com/hold"


def _agent(name: str = "a1", **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, **meta}, "spec": {"region": "us-east-1"}}


def _owned_by(owner: dict[str, Any], name: str, block: bool = False) -> dict[str, Any]:
    reference = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block,
    }
    return {"metadata": {"name": name, "ownerReferences": [reference]}, "spec": {"agentRef": {"name": "a1"}}}


# --- Deletion and finalizers -------------------------------------------------------------------------------


async def test_delete_without_finalizers_removes_at_once(kube_api: KubeCluster) -> None:
    created = await kube_api.client.create("spotagents", _agent())
    deleted = await kube_api.client.delete("spotagents", "a1")
    assert deleted["metadata"]["uid"] == created["metadata"]["uid"]
    assert kube_api.api.find("spotagents", "default", "a1") is None
    assert kube_api.api.objects["spotoptimizer.io/v1alpha1/spotagents", "default", "a1"].deleted


async def test_finalizers_hold_the_object_until_released(kube_api: KubeCluster) -> None:
    client = kube_api.client
    created = await client.create("spotagents", _agent(finalizers=[HOLD, "example.com/other"]))

    marked = await client.delete("spotagents", "a1")
    again = await client.delete("spotagents", "a1")  # a second DELETE changes nothing
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 0
    assert marked["metadata"]["generation"] == created["metadata"]["generation"] + 1  # as the API server does
    assert again == marked

    one_left = await client.patch("spotagents", "a1", {"metadata": {"finalizers": ["example.com/other"]}})
    assert kube_api.api.find("spotagents", "default", "a1") == one_left
    await client.patch("spotagents", "a1", {"metadata": {"finalizers": []}})
    assert kube_api.api.find("spotagents", "default", "a1") is None


async def test_no_new_finalizers_on_an_object_being_deleted(kube_api: KubeCluster) -> None:
    client = kube_api.client
    await client.create("spotagents", _agent(finalizers=[HOLD]))
    await client.delete("spotagents", "a1")
    with pytest.raises(KubeApiError) as error:
        await client.patch("spotagents", "a1", {"metadata": {"finalizers": [HOLD, "example.com/late"]}})
    assert error.value.status == 422


async def test_delete_preconditions(kube_api: KubeCluster) -> None:
    client = kube_api.client
    created = await client.create("spotagents", _agent())
    for preconditions in ({"uid": "someone-else"}, {"resourceVersion": "1"}):
        with pytest.raises(KubeApiError) as error:
            await client.delete("spotagents", "a1", preconditions=preconditions)
        assert error.value.status == 409
    current = {"uid": created["metadata"]["uid"], "resourceVersion": created["metadata"]["resourceVersion"]}
    await client.delete("spotagents", "a1", preconditions=current)
    assert kube_api.api.find("spotagents", "default", "a1") is None


async def test_recreating_after_deletion_is_a_new_object(kube_api: KubeCluster) -> None:
    first = await kube_api.client.create("spotagents", _agent())
    await kube_api.client.delete("spotagents", "a1")
    second = await kube_api.client.create("spotagents", _agent())
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    assert second["metadata"]["generation"] == 1
    history = kube_api.api.objects["spotoptimizer.io/v1alpha1/spotagents", "default", "a1"].history
    assert [version is None for version in history] == [False, True, False]


# --- Owners and garbage collection -------------------------------------------------------------------------


async def test_owner_references_are_stored(kube_api: KubeCluster) -> None:
    agent = await kube_api.client.create("spotagents", _agent())
    replica = await kube_api.client.create("replicas", _owned_by(agent, "r1", block=True))
    assert replica["metadata"]["ownerReferences"][0]["uid"] == agent["metadata"]["uid"]


async def test_background_deletion_collects_dependents_after_the_owner(kube_api: KubeCluster) -> None:
    client = kube_api.client
    agent = await client.create("spotagents", _agent())
    other = await client.create("spotagents", _agent("a2"))
    await client.create("replicas", _owned_by(agent, "r1"))
    held = _owned_by(agent, "r2")
    held["metadata"]["finalizers"] = [HOLD]
    await client.create("replicas", held)
    both = _owned_by(agent, "r3")
    both["metadata"]["ownerReferences"].append(_owned_by(other, "x")["metadata"]["ownerReferences"][0])
    await client.create("replicas", both)

    await client.delete("spotagents", "a1")

    await until(lambda: kube_api.api.find("replicas", "default", "r1") is None)
    r2 = await until(
        lambda: (
            (kube_api.api.find("replicas", "default", "r2") or {})
            .get("metadata", {})
            .get("deletionTimestamp")
        )
    )
    assert r2  # a dependent's own finalizers are honoured
    assert kube_api.api.find("replicas", "default", "r3") is not None  # another owner still exists


async def test_foreground_deletion_waits_for_blocking_dependents(kube_api: KubeCluster) -> None:
    client = kube_api.client
    agent = await client.create("spotagents", _agent())
    held = _owned_by(agent, "r1", block=True)
    held["metadata"]["finalizers"] = [HOLD]
    await client.create("replicas", held)

    marked = await client.delete("spotagents", "a1", propagationPolicy="Foreground")

    assert marked["metadata"]["finalizers"] == ["foregroundDeletion"]
    await until(
        lambda: (kube_api.api.find("replicas", "default", "r1") or {})["metadata"].get("deletionTimestamp")
    )
    assert kube_api.api.find("spotagents", "default", "a1") is not None  # still waiting for r1
    await client.patch("replicas", "r1", {"metadata": {"finalizers": None}})
    await until(lambda: kube_api.api.find("spotagents", "default", "a1") is None)


async def test_orphan_deletion_keeps_dependents_and_drops_the_reference(kube_api: KubeCluster) -> None:
    client = kube_api.client
    agent = await client.create("spotagents", _agent())
    await client.create("replicas", _owned_by(agent, "r1"))
    await client.delete("spotagents", "a1", propagationPolicy="Orphan")
    replica = kube_api.api.find("replicas", "default", "r1")
    assert replica is not None
    assert "ownerReferences" not in replica["metadata"]


async def test_a_dependent_of_a_missing_owner_is_collected(kube_api: KubeCluster) -> None:
    ghost = {
        "apiVersion": "spotoptimizer.io/v1alpha1",
        "kind": "SpotAgent",
        "metadata": {"name": "g", "uid": "nope"},
    }
    created = await kube_api.client.create("replicas", _owned_by(ghost, "r1"))
    assert created["metadata"]["name"] == "r1"  # the create itself succeeds, as with the real collector
    await until(lambda: kube_api.api.find("replicas", "default", "r1") is None)


# --- Namespaces --------------------------------------------------------------------------------------------


async def test_namespaces_list_the_declared_and_the_used(kube_api: KubeCluster) -> None:
    await kube_api.client.create("spotagents", _agent(), namespace="team-a")
    status, answer = await kube_api.client.request("GET", "/api/v1/namespaces")
    assert status == 200
    assert answer["kind"] == "NamespaceList"
    assert [item["metadata"]["name"] for item in answer["items"]] == ["default", "team-a"]
    assert (await kube_api.client.get("namespaces", "team-a"))["status"]["phase"] == "Active"


async def test_strict_namespaces_refuse_unknown_ones(tmp_path: Path) -> None:
    async with served_kube_api(tmp_path, strict_namespaces=True, namespaces=("prod",)) as cluster:
        with pytest.raises(KubeApiError) as error:
            await cluster.client.create("spotagents", _agent(), namespace="team-a")
        await cluster.client.create("spotagents", _agent(), namespace="prod")
    assert error.value.status == 404
    assert error.value.body["message"] == 'namespaces "team-a" not found'


async def test_deleting_a_namespace_deletes_its_content(kube_api: KubeCluster) -> None:
    client = kube_api.client
    await client.create("spotagents", _agent(finalizers=[HOLD]), namespace="team-a")
    await client.create("spotagents", _agent("a2"), namespace="team-a")
    await client.create("spotagents", _agent("a3"), namespace="team-b")

    terminating = await client.delete("namespaces", "team-a")
    assert terminating["status"]["phase"] == "Terminating"
    await until(lambda: kube_api.api.find("spotagents", "team-a", "a2") is None)
    with pytest.raises(KubeApiError) as error:
        await client.create("spotagents", _agent("a4"), namespace="team-a")
    assert error.value.status == 403

    await client.patch("spotagents", "a1", {"metadata": {"finalizers": None}}, namespace="team-a")
    await until(lambda: kube_api.api.find("namespaces", None, "team-a") is None)
    assert kube_api.api.find("spotagents", "team-b", "a3") is not None


# --- CRDs, discovery, paging -------------------------------------------------------------------------------


async def test_the_project_crds_are_served_as_objects(kube_api: KubeCluster) -> None:
    answer = await kube_api.client.list("customresourcedefinitions")
    served = {item["metadata"]["name"]: item for item in answer["items"]}
    files = {path: yaml.safe_load(path.read_text()) for path in sorted((REPO / "crds").glob("*.yaml"))}
    assert set(served) == {crd["metadata"]["name"] for crd in files.values()}
    for crd in files.values():
        assert served[crd["metadata"]["name"]]["spec"] == crd["spec"]
        conditions = {c["type"]: c["status"] for c in served[crd["metadata"]["name"]]["status"]["conditions"]}
        assert conditions["Established"] == "True"


async def test_creating_a_crd_serves_its_resource(kube_api: KubeCluster) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Cluster",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}}}],
        },
    }
    await kube_api.client.create("customresourcedefinitions", crd)
    widget = await kube_api.client.create("widgets", {"metadata": {"name": "w1"}, "status": {"x": 1}})
    assert widget["kind"] == "Widget"
    assert "namespace" not in widget["metadata"]
    assert "status" not in widget  # the status subresource applies
    assert widget["metadata"]["generation"] == 1


async def test_discovery_answers_what_kopf_scans(kube_api: KubeCluster) -> None:
    request = kube_api.client.request
    _, api = await request("GET", "/api")
    _, core = await request("GET", "/api/v1")
    _, groups = await request("GET", "/apis")
    _, ours = await request("GET", "/apis/spotoptimizer.io/v1alpha1")

    assert api["versions"] == ["v1"]
    assert core["groupVersion"] == "v1"
    assert {"namespaces", "events", "secrets", "namespaces/status"} <= {r["name"] for r in core["resources"]}
    assert {"spotoptimizer.io", "kopf.dev", "coordination.k8s.io", "events.k8s.io"} <= {
        group["name"] for group in groups["groups"]
    }
    resources = {resource["name"]: resource for resource in ours["resources"]}
    assert set(resources) == {
        "spotagents",
        "spotagents/status",
        "replicas",
        "replicas/status",
        "switchrequests",
        "switchrequests/status",
    }
    assert resources["spotagents"]["kind"] == "SpotAgent"
    assert resources["spotagents"]["namespaced"] is True
    assert {"list", "watch", "patch", "create", "delete"} <= set(resources["spotagents"]["verbs"])
    assert sorted(resources["spotagents"]["shortNames"]) == ["sag", "spotagent"]
    assert resources["spotagents"]["categories"] == ["spot-optimizer"]
    status = resources["spotagents/status"]
    assert (status["shortNames"], status["categories"], sorted(status["verbs"])) == (
        [],
        [],
        ["get", "patch", "update"],
    )


async def test_list_pages_with_limit_and_continue(kube_api: KubeCluster) -> None:
    for index in range(5):
        await kube_api.client.create("spotagents", _agent(f"a{index}"))
    first = await kube_api.client.list("spotagents", limit="2")
    await kube_api.client.create("spotagents", _agent("zz"))  # after the first page
    second = await kube_api.client.list(
        "spotagents", limit="2", **{"continue": first["metadata"]["continue"]}
    )
    rest = await kube_api.client.list("spotagents", **{"continue": second["metadata"]["continue"]})

    names = [item["metadata"]["name"] for page in (first, second, rest) for item in page["items"]]
    assert names == ["a0", "a1", "a2", "a3", "a4", "zz"]
    assert first["metadata"]["remainingItemCount"] == 3
    assert "continue" not in rest["metadata"]
    # Every page reports the first page's version, so a watch from it misses nothing.
    versions = {page["metadata"]["resourceVersion"] for page in (first, second, rest)}
    assert versions == {first["metadata"]["resourceVersion"]}
