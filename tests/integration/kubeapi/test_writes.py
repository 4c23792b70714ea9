"""The emulation's write rules over HTTP: metadata, generation, create and conflicts, patches, concurrency."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes.kube import KubeApiError, KubeCluster

AGENT: dict[str, Any] = {
    "metadata": {"name": "a1", "labels": {"team": "ml"}},
    "spec": {"region": "us-east-1"},
}
AGENT_PATH = "/apis/spotoptimizer.io/v1alpha1/namespaces/default/spotagents"


async def test_create_stamps_metadata_and_answers_201(kube_api: KubeCluster) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    status, body = await kube_api.client.request("POST", AGENT_PATH, AGENT)

    assert status == 201
    meta = body["metadata"]
    assert uuid.UUID(meta["uid"]).version == 4
    created = datetime.strptime(meta["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= created <= datetime.now(UTC) + timedelta(seconds=1)
    assert int(meta["resourceVersion"]) == kube_api.api.resource_version
    assert meta["generation"] == 1
    assert meta["namespace"] == "default"  # copied from the URL
    assert body["apiVersion"] == "spotoptimizer.io/v1alpha1" and body["kind"] == "SpotAgent"  # filled in
    assert kube_api.api.find("spotagents", "default", "a1") == body


async def test_duplicate_create_is_409_already_exists(kube_api: KubeCluster) -> None:
    await kube_api.client.create("spotagents", AGENT)
    with pytest.raises(KubeApiError) as error:
        await kube_api.client.create("spotagents", AGENT)
    assert error.value.status == 409
    assert error.value.reason == "AlreadyExists"
    assert error.value.body["message"] == 'spotagents.spotoptimizer.io "a1" already exists'


async def test_same_name_in_another_namespace_is_another_object(kube_api: KubeCluster) -> None:
    first = await kube_api.client.create("spotagents", AGENT)
    second = await kube_api.client.create("spotagents", AGENT, namespace="team-b")
    assert second["metadata"]["namespace"] == "team-b"
    assert second["metadata"]["uid"] != first["metadata"]["uid"]


async def test_namespace_in_body_must_match_the_url(kube_api: KubeCluster) -> None:
    body = {"metadata": {"name": "a1", "namespace": "elsewhere"}, "spec": {}}
    status, answer = await kube_api.client.request("POST", AGENT_PATH, body)
    assert status == 400
    assert "does not match the namespace" in answer["message"]


async def test_generate_name_makes_a_unique_name(kube_api: KubeCluster) -> None:
    body = {"metadata": {"generateName": "agent-"}, "spec": {}}
    first = await kube_api.client.create("spotagents", body)
    second = await kube_api.client.create("spotagents", body)
    names = {first["metadata"]["name"], second["metadata"]["name"]}
    assert len(names) == 2
    assert all(name.startswith("agent-") and len(name) == len("agent-") + 5 for name in names)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"metadata": {}, "spec": {}}, 422),  # neither name nor generateName
        ({"metadata": {"name": "Not_A_Name"}}, 422),
        ({"metadata": {"name": "a1", "resourceVersion": "7"}}, 400),
        ({"kind": "Replica", "metadata": {"name": "a1"}}, 400),
        ([{"metadata": {"name": "a1"}}], 400),
    ],
)
async def test_invalid_creates_are_refused(kube_api: KubeCluster, body: Any, status: int) -> None:
    answer_status, answer = await kube_api.client.request("POST", AGENT_PATH, body)
    assert answer_status == status, answer
    assert answer["kind"] == "Status" and answer["code"] == status
    assert kube_api.api.select("spotagents") == []


async def test_resource_version_grows_on_every_write_across_resources(kube_api: KubeCluster) -> None:
    client = kube_api.client
    versions = [int((await client.create("spotagents", AGENT))["metadata"]["resourceVersion"])]
    versions.append(
        int((await client.create("leases", {"metadata": {"name": "l1"}}))["metadata"]["resourceVersion"])
    )
    patched = await client.patch("spotagents", "a1", {"metadata": {"labels": {"x": "1"}}})
    versions.append(int(patched["metadata"]["resourceVersion"]))
    patched = await client.patch("spotagents", "a1", {"status": {"phase": "Ready"}}, subresource="status")
    versions.append(int(patched["metadata"]["resourceVersion"]))
    versions.append(int((await client.delete("leases", "l1"))["metadata"]["resourceVersion"]))

    assert versions == sorted(set(versions)), versions
    fetched = await client.get("spotagents", "a1")
    assert fetched["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]


async def test_a_write_that_changes_nothing_keeps_the_version(kube_api: KubeCluster) -> None:
    created = await kube_api.client.create("spotagents", AGENT)
    same = await kube_api.client.patch("spotagents", "a1", {"spec": {"region": "us-east-1"}})
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert kube_api.api.resource_version == int(created["metadata"]["resourceVersion"])


@pytest.mark.parametrize(
    ("patch", "generation"),
    [
        ({"spec": {"mode": "off"}}, 2),
        ({"spec": {"region": None}}, 2),  # removing a field is a change
        ({"extra": {"top-level": True}}, 2),  # anything outside metadata and status counts
        ({"metadata": {"labels": {"x": "1"}, "annotations": {"a": "b"}}}, 1),
        ({"metadata": {"finalizers": ["example.com/hold"]}}, 1),
        ({"status": {"phase": "Ready"}}, 1),  # ignored on the main resource: status is a subresource
    ],
)
async def test_generation_moves_only_when_the_spec_changes(
    kube_api: KubeCluster, patch: dict[str, Any], generation: int
) -> None:
    await kube_api.client.create("spotagents", AGENT)
    patched = await kube_api.client.patch("spotagents", "a1", patch)
    assert patched["metadata"]["generation"] == generation


async def test_generation_counts_each_change_and_not_status_writes(kube_api: KubeCluster) -> None:
    client = kube_api.client
    await client.create("spotagents", AGENT)
    await client.patch("spotagents", "a1", {"spec": {"mode": "off"}})
    await client.patch("spotagents", "a1", {"status": {"phase": "Ready"}}, subresource="status")
    await client.patch("spotagents", "a1", {"spec": {"mode": "auto-switch"}})
    assert (await client.get("spotagents", "a1"))["metadata"]["generation"] == 3


async def test_builtin_kinds_have_no_generation(kube_api: KubeCluster) -> None:
    lease = await kube_api.client.create(
        "leases", {"metadata": {"name": "l1"}, "spec": {"holderIdentity": "a"}}
    )
    patched = await kube_api.client.patch("leases", "l1", {"spec": {"holderIdentity": "b"}})
    assert "generation" not in lease["metadata"]
    assert "generation" not in patched["metadata"]


async def test_system_metadata_cannot_be_overwritten(kube_api: KubeCluster) -> None:
    created = await kube_api.client.create("spotagents", AGENT)
    forged = {"metadata": {"uid": "forged", "creationTimestamp": "2000-01-01T00:00:00Z", "generation": 99}}
    patched = await kube_api.client.patch("spotagents", "a1", forged)
    for field_name in ("uid", "creationTimestamp", "generation"):
        assert patched["metadata"][field_name] == created["metadata"][field_name]


async def test_renaming_through_a_patch_is_400(kube_api: KubeCluster) -> None:
    await kube_api.client.create("spotagents", AGENT)
    with pytest.raises(KubeApiError) as error:
        await kube_api.client.patch("spotagents", "a1", {"metadata": {"name": "a2"}})
    assert error.value.status == 400


async def test_merge_patch_follows_rfc_7386(kube_api: KubeCluster) -> None:
    await kube_api.client.create(
        "spotagents", {"metadata": {"name": "a1"}, "spec": {"zones": ["a", "b"], "policy": {"x": 1, "y": 2}}}
    )
    patch = {"spec": {"zones": ["c"], "policy": {"x": None, "z": 3}, "traffic": {"eip": "e-1"}}}
    patched = await kube_api.client.patch("spotagents", "a1", patch)
    assert patched["spec"] == {"zones": ["c"], "policy": {"y": 2, "z": 3}, "traffic": {"eip": "e-1"}}


async def test_json_patch_applies_operations_in_order(kube_api: KubeCluster) -> None:
    created = await kube_api.client.create("spotagents", AGENT)
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": created["metadata"]["resourceVersion"]},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/hold"]},
        {"op": "replace", "path": "/spec/region", "value": "eu-west-1"},
    ]
    patched = await kube_api.client.patch("spotagents", "a1", ops, kind="json")
    assert patched["metadata"]["finalizers"] == ["example.com/hold"]
    assert patched["spec"]["region"] == "eu-west-1"


async def test_failed_json_patch_test_op_is_422_and_changes_nothing(kube_api: KubeCluster) -> None:
    created = await kube_api.client.create("spotagents", AGENT)
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/hold"]},
    ]
    with pytest.raises(KubeApiError) as error:
        await kube_api.client.patch("spotagents", "a1", ops, kind="json")
    assert error.value.status == 422
    assert kube_api.api.find("spotagents", "default", "a1") == created


async def test_json_patch_on_a_missing_path_is_422(kube_api: KubeCluster) -> None:
    await kube_api.client.create("spotagents", AGENT)
    with pytest.raises(KubeApiError) as error:
        await kube_api.client.patch(
            "spotagents", "a1", [{"op": "remove", "path": "/spec/nothing"}], kind="json"
        )
    assert error.value.status == 422


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/strategic-merge-patch+json", 415),  # custom resources refuse it, as the API server does
        ("application/apply-patch+yaml", 415),
        ("application/json", 415),
    ],
)
async def test_unsupported_patch_types(kube_api: KubeCluster, content_type: str, status: int) -> None:
    await kube_api.client.create("spotagents", AGENT)
    answer_status, answer = await kube_api.client.request(
        "PATCH", f"{AGENT_PATH}/a1", {"spec": {"mode": "off"}}, content_type=content_type
    )
    assert answer_status == status, answer
    assert answer["reason"] == "UnsupportedMediaType"


async def test_strategic_merge_patch_works_as_a_merge_on_builtin_kinds(kube_api: KubeCluster) -> None:
    await kube_api.client.create("configmaps", {"metadata": {"name": "c1"}, "data": {"a": "1"}})
    status, answer = await kube_api.client.request(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/c1",
        {"data": {"b": "2"}},
        content_type="application/strategic-merge-patch+json",
    )
    assert status == 200
    assert answer["data"] == {"a": "1", "b": "2"}


async def test_stale_resource_version_in_a_merge_patch_is_409(kube_api: KubeCluster) -> None:
    created = await kube_api.client.create("spotagents", AGENT)
    stale = created["metadata"]["resourceVersion"]
    await kube_api.client.patch("spotagents", "a1", {"spec": {"mode": "off"}})
    with pytest.raises(KubeApiError) as error:
        await kube_api.client.patch("spotagents", "a1", {"metadata": {"resourceVersion": stale}, "spec": {}})
    assert error.value.status == 409
    assert error.value.reason == "Conflict"


async def test_put_replaces_with_optimistic_concurrency(kube_api: KubeCluster) -> None:
    client = kube_api.client
    created = await client.create("spotagents", AGENT)
    body = {"metadata": {"name": "a1", "resourceVersion": created["metadata"]["resourceVersion"]}, "spec": {}}
    replaced = await client.replace("spotagents", "a1", body)
    assert replaced["spec"] == {}
    assert "labels" not in replaced["metadata"]  # PUT replaces, it does not merge
    assert replaced["metadata"]["generation"] == 2

    with pytest.raises(KubeApiError) as stale:
        await client.replace("spotagents", "a1", body)  # the version it read is gone now
    assert stale.value.status == 409

    with pytest.raises(KubeApiError) as unconditional:
        await client.replace("spotagents", "a1", {"metadata": {"name": "a1"}, "spec": {}})
    assert unconditional.value.status == 422  # custom resources need the version on update


async def test_missing_objects_are_404_with_the_api_message(kube_api: KubeCluster) -> None:
    for call in (
        kube_api.client.get("spotagents", "ghost"),
        kube_api.client.patch("spotagents", "ghost", {"spec": {}}),
        kube_api.client.delete("spotagents", "ghost"),
    ):
        with pytest.raises(KubeApiError) as error:
            await call
        assert error.value.status == 404
        assert error.value.body["message"] == 'spotagents.spotoptimizer.io "ghost" not found'
        assert error.value.body["details"] == {
            "name": "ghost",
            "group": "spotoptimizer.io",
            "kind": "spotagents",
        }


async def test_undeclared_resources_and_wrong_scopes_are_404(kube_api: KubeCluster) -> None:
    request = kube_api.client.request
    assert (await request("GET", "/apis/example.com/v1/namespaces/default/widgets"))[0] == 404
    assert (await request("GET", "/apis/kopf.dev/v1/namespaces/default/clusterkopfpeerings"))[0] == 404
    assert (await request("GET", "/apis/spotoptimizer.io/v1alpha1/spotagents/a1"))[0] == 404
    assert (await request("GET", f"{AGENT_PATH}/a1/scale"))[0] == 404


async def test_secret_string_data_becomes_base64_data(kube_api: KubeCluster) -> None:
    secret = await kube_api.client.create(
        "secrets", {"metadata": {"name": "token"}, "stringData": {"token": "s3cret"}, "data": {"a": "YQ=="}}
    )
    assert "stringData" not in secret
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["token"]) == b"s3cret"
    assert secret["data"]["a"] == "YQ=="
