"""Watch streams as kopf uses them: initial state, resuming from a version, bookmarks, timeouts, deletion."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.fakes.kube import KubeCluster, served_kube_api

AGENT: dict[str, Any] = {"metadata": {"name": "a1"}, "spec": {"region": "us-east-1"}}


def _brief(event: dict[str, Any]) -> tuple[str, str, str]:
    meta = event["object"]["metadata"]
    return event["type"], meta.get("name", ""), meta["resourceVersion"]


async def test_watch_without_a_version_starts_with_what_exists(kube_api: KubeCluster) -> None:
    client = kube_api.client
    created = await client.create("spotagents", AGENT)
    async with client.watch("spotagents") as stream:
        first = await stream.next()
        patched = await client.patch("spotagents", "a1", {"spec": {"mode": "off"}})
        second = await stream.next()
    assert _brief(first) == ("ADDED", "a1", created["metadata"]["resourceVersion"])
    assert _brief(second) == ("MODIFIED", "a1", patched["metadata"]["resourceVersion"])
    assert second["object"] == patched  # the event carries exactly what the PATCH returned


async def test_list_then_watch_from_its_version_misses_nothing(kube_api: KubeCluster) -> None:
    """kopf lists, then watches from the list's resourceVersion; writes in between must arrive."""
    client = kube_api.client
    await client.create("spotagents", AGENT)
    listing = await client.list("spotagents")
    await client.patch("spotagents", "a1", {"spec": {"mode": "off"}})  # after the list, before the watch
    await client.create("spotagents", {"metadata": {"name": "a2"}, "spec": {}})

    async with client.watch("spotagents", resourceVersion=listing["metadata"]["resourceVersion"]) as stream:
        events = await stream.take(2)
    assert [event["type"] for event in events] == ["MODIFIED", "ADDED"]
    assert [event["object"]["metadata"]["name"] for event in events] == ["a1", "a2"]


async def test_watch_from_the_current_version_replays_nothing(kube_api: KubeCluster) -> None:
    client = kube_api.client
    await client.create("spotagents", AGENT)
    async with client.watch(
        "spotagents", resourceVersion=str(kube_api.api.resource_version), timeoutSeconds="1"
    ) as stream:
        assert await stream.rest() == []


async def test_a_version_out_of_the_window_is_410_gone(tmp_path: Path) -> None:
    async with served_kube_api(tmp_path, event_window=3) as cluster:
        client = cluster.client
        created = await client.create("spotagents", AGENT)
        for mode in ("off", "auto-switch", "manual-replica", "off"):
            await client.patch("spotagents", "a1", {"spec": {"mode": mode}})
        async with client.watch(
            "spotagents", resourceVersion=created["metadata"]["resourceVersion"]
        ) as stream:
            event = await stream.next()
        recent = str(cluster.api.resource_version - 1)
        async with client.watch("spotagents", resourceVersion=recent) as stream:
            still_there = await stream.next()
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"
    assert still_there["type"] == "MODIFIED"


async def test_initial_events_end_with_a_bookmark(kube_api: KubeCluster) -> None:
    client = kube_api.client
    await client.create("spotagents", AGENT)
    params = {
        "sendInitialEvents": "true",
        "allowWatchBookmarks": "true",
        "resourceVersionMatch": "NotOlderThan",
    }
    async with client.watch("spotagents", **params) as stream:
        added, bookmark = await stream.take(2)
    assert added["type"] == "ADDED"
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert bookmark["object"]["metadata"]["resourceVersion"] == str(kube_api.api.resource_version)


async def test_idle_watches_get_bookmarks_when_allowed(tmp_path: Path) -> None:
    async with served_kube_api(tmp_path, bookmark_interval=0.2) as cluster:
        async with cluster.client.watch("spotagents", allowWatchBookmarks="true") as stream:
            bookmark = await stream.next()
        async with cluster.client.watch("spotagents", timeoutSeconds="1") as stream:
            nothing = await stream.rest()
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["kind"] == "SpotAgent"
    assert nothing == []  # no bookmarks unless asked for


async def test_timeout_seconds_ends_the_stream(kube_api: KubeCluster) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with kube_api.client.watch("spotagents", timeoutSeconds="1") as stream:
        assert await stream.rest(within=30) == []
    assert 0.9 <= loop.time() - started < 30


async def test_deletion_with_a_finalizer_is_modified_modified_deleted(kube_api: KubeCluster) -> None:
    client = kube_api.client
    await client.create(
        "spotagents", {**AGENT, "metadata": {"name": "a1", "finalizers": ["example.com/hold"]}}
    )
    async with client.watch("spotagents", resourceVersion=str(kube_api.api.resource_version)) as stream:
        marked = await client.delete("spotagents", "a1")
        released = await client.patch("spotagents", "a1", {"metadata": {"finalizers": None}})
        events = await stream.take(3)

    assert [event["type"] for event in events] == ["MODIFIED", "MODIFIED", "DELETED"]
    assert events[0]["object"] == marked
    assert events[1]["object"] == released
    assert not events[2]["object"]["metadata"].get("finalizers")
    assert events[2]["object"]["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]
    versions = [int(event["object"]["metadata"]["resourceVersion"]) for event in events]
    assert versions == sorted(set(versions))


async def test_watches_end_when_the_server_stops(tmp_path: Path) -> None:
    async with served_kube_api(tmp_path) as cluster, cluster.client.watch("spotagents") as stream:
        await until_watching(cluster)
        cluster.api.close_watches()
        assert await stream.rest() == []
        assert cluster.api.store.watcher_count() == 0


async def until_watching(cluster: KubeCluster) -> None:
    for _ in range(200):
        if cluster.api.store.watcher_count():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the watch never subscribed")


async def test_a_closed_client_unsubscribes(kube_api: KubeCluster) -> None:
    async with kube_api.client.watch("spotagents"):
        await until_watching(kube_api)
    for _ in range(500):
        if not kube_api.api.store.watcher_count():
            break
        await asyncio.sleep(0.01)
    assert kube_api.api.store.watcher_count() == 0
