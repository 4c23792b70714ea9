"""Label and field selectors: the parser, and list, watch and delete-collection honouring them."""

from __future__ import annotations

import pytest

from spot_operator.sandbox.kubeapi import FieldSelector, LabelSelector
from tests.fakes.kube import KubeApiError, KubeCluster

LABELS = {"app": "web", "tier": "front", "owner": ""}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("app!=web", False),
        ("missing!=x", True),  # != also matches an absent label, as in Kubernetes
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier=front", True),
        ("app=web, tier=back", False),
        ("tier in (front, back)", True),
        ("tier in (back)", False),
        ("tier notin (back,side)", True),
        ("tier notin (front)", False),
        ("missing notin (x)", True),
        ("app in (web),!missing,tier", True),
        ("owner=", True),
        ("example.com/role", False),
    ],
)
def test_label_selector(selector: str, matches: bool) -> None:
    assert LabelSelector.parse(selector).matches(LABELS) is matches


@pytest.mark.parametrize("selector", ["=web", "app in web", "a b", "app=we b", "app in (x"])
def test_label_selector_rejects_garbage(selector: str) -> None:
    with pytest.raises(ValueError, match="unable to parse"):
        LabelSelector.parse(selector)


def test_field_selector() -> None:
    obj = {"metadata": {"name": "a1", "namespace": "ns"}}
    assert FieldSelector.parse("metadata.name=a1").matches(obj)
    assert FieldSelector.parse("metadata.name==a1,metadata.namespace=ns").matches(obj)
    assert not FieldSelector.parse("metadata.name!=a1").matches(obj)
    assert FieldSelector.parse("metadata.namespace!=other").matches(obj)
    with pytest.raises(ValueError, match="field label not supported"):
        FieldSelector.parse("spec.region=us-east-1")


async def _three_agents(cluster: KubeCluster) -> None:
    for name, labels in (("a1", {"app": "web"}), ("a2", {"app": "db"}), ("a3", {})):
        await cluster.client.create("spotagents", {"metadata": {"name": name, "labels": labels}, "spec": {}})


def _names(answer: dict[str, list[dict[str, dict[str, str]]]]) -> list[str]:
    return [item["metadata"]["name"] for item in answer["items"]]


async def test_list_with_label_selectors(kube_api: KubeCluster) -> None:
    await _three_agents(kube_api)
    listing = kube_api.client.list
    assert _names(await listing("spotagents", labelSelector="app=web")) == ["a1"]
    assert _names(await listing("spotagents", labelSelector="app")) == ["a1", "a2"]
    assert _names(await listing("spotagents", labelSelector="!app")) == ["a3"]
    assert _names(await listing("spotagents", labelSelector="app!=web")) == ["a2", "a3"]
    assert _names(await listing("spotagents", labelSelector="app in (web,db)")) == ["a1", "a2"]


async def test_list_with_field_selectors(kube_api: KubeCluster) -> None:
    await _three_agents(kube_api)
    await kube_api.client.create("spotagents", {"metadata": {"name": "a1"}, "spec": {}}, namespace="other")
    assert _names(await kube_api.client.list("spotagents", fieldSelector="metadata.name=a1")) == ["a1", "a1"]
    answer = await kube_api.client.list("spotagents", fieldSelector="metadata.namespace=other")
    assert [item["metadata"]["namespace"] for item in answer["items"]] == ["other"]


async def test_bad_selectors_are_400(kube_api: KubeCluster) -> None:
    for params in ({"labelSelector": "a b"}, {"fieldSelector": "spec.x=1"}):
        with pytest.raises(KubeApiError) as error:
            await kube_api.client.list("spotagents", **params)
        assert error.value.status == 400


async def test_watch_with_a_label_selector_sees_objects_enter_and_leave(kube_api: KubeCluster) -> None:
    client = kube_api.client
    await _three_agents(kube_api)
    async with client.watch("spotagents", labelSelector="app=web") as stream:
        initial = await stream.next()
        await client.patch("spotagents", "a2", {"spec": {"mode": "off"}})  # not selected: unseen
        await client.patch("spotagents", "a3", {"metadata": {"labels": {"app": "web"}}})  # enters
        await client.patch("spotagents", "a1", {"metadata": {"labels": {"app": "api"}}})  # leaves
        await client.patch("spotagents", "a3", {"spec": {"mode": "off"}})  # selected: seen
        events = await stream.take(3)

    assert (initial["type"], initial["object"]["metadata"]["name"]) == ("ADDED", "a1")
    seen = [(event["type"], event["object"]["metadata"]["name"]) for event in events]
    assert seen == [("ADDED", "a3"), ("DELETED", "a1"), ("MODIFIED", "a3")]
    assert events[1]["object"]["metadata"]["labels"] == {"app": "api"}  # the state that left the selection


async def test_watch_in_a_namespace_sees_only_it(kube_api: KubeCluster) -> None:
    client = kube_api.client
    async with client.watch("spotagents", namespace="team-a") as stream:
        await client.create("spotagents", {"metadata": {"name": "x"}, "spec": {}}, namespace="team-b")
        await client.create("spotagents", {"metadata": {"name": "y"}, "spec": {}}, namespace="team-a")
        event = await stream.next()
    assert event["object"]["metadata"]["namespace"] == "team-a"


async def test_delete_collection_by_label(kube_api: KubeCluster) -> None:
    await _three_agents(kube_api)
    status, answer = await kube_api.client.request(
        "DELETE", kube_api.client.path("spotagents", "default"), params={"labelSelector": "app"}
    )
    assert status == 200
    assert sorted(_names(answer)) == ["a1", "a2"]
    assert [obj["metadata"]["name"] for obj in kube_api.api.select("spotagents")] == ["a3"]
