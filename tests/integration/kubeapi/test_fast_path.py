"""The fast path answers exactly as kmock's own routing does, keeps a bounded log, and yields to reactions."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import kmock

from spot_operator.sandbox.kubeapi import RbacRequest
from tests.fakes.kube import KubeCluster, served_kube_api

AGENTS = "/apis/spotoptimizer.io/v1alpha1/namespaces/default/spotagents"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

# (method, path, body, content type): every kind of request kopf and the operator make, errors included.
SCRIPT: list[tuple[str, str, Any, str]] = [
    ("GET", "/api", None, ""),
    ("GET", "/apis/spotoptimizer.io/v1alpha1", None, ""),
    (
        "POST",
        AGENTS,
        {"metadata": {"name": "a1", "labels": {"app": "x"}}, "spec": {"region": "r"}},
        "application/json",
    ),
    ("POST", AGENTS, {"metadata": {"name": "a1"}}, "application/json"),
    ("GET", f"{AGENTS}/a1", None, ""),
    ("PATCH", f"{AGENTS}/a1", {"spec": {"mode": "off"}, "metadata": {"finalizers": ["f"]}}, MERGE),
    ("PATCH", f"{AGENTS}/a1/status", {"status": {"phase": "Ready"}}, MERGE),
    (
        "PATCH",
        f"{AGENTS}/a1",
        [{"op": "test", "path": "/metadata/resourceVersion", "value": "0"}],
        JSON_PATCH,
    ),
    ("GET", f"{AGENTS}?labelSelector=app%3Dx", None, ""),
    ("GET", "/api/v1/namespaces", None, ""),
    ("DELETE", f"{AGENTS}/a1", None, ""),
    ("PATCH", f"{AGENTS}/a1", {"metadata": {"finalizers": None}}, MERGE),
    ("GET", f"{AGENTS}/a1", None, ""),
    ("GET", f"{AGENTS}?watch=true&resourceVersion=3&timeoutSeconds=1", None, ""),
]

EXPECTED_STATUSES = [200, 200, 201, 409, 200, 200, 200, 422, 200, 200, 200, 200, 404, 200]
_VOLATILE = re.compile(r'"(uid|creationTimestamp|deletionTimestamp|lastTransitionTime)": "[^"]*"')


async def _replay(cluster: KubeCluster) -> list[tuple[int, str]]:
    answers = []
    for method, path, body, content_type in SCRIPT:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if content_type else {}
        async with cluster.client.session.request(
            method, cluster.url + path, data=data, headers=headers
        ) as rsp:
            text = await rsp.text()
        answers.append((rsp.status, _VOLATILE.sub(r'"\1": "-"', text)))
    return answers


async def test_fast_and_slow_paths_answer_the_same(tmp_path: Path) -> None:
    async with served_kube_api(tmp_path / "fast") as fast:
        fast_answers = await _replay(fast)
    async with served_kube_api(tmp_path / "slow", fast_path=False) as slow:
        slow_answers = await _replay(slow)

    assert [status for status, _ in fast_answers] == EXPECTED_STATUSES
    assert fast_answers == slow_answers
    assert fast.api.fast_path_served == len(SCRIPT)
    assert slow.api.fast_path_served == 0
    assert slow.api.requests_served == len(SCRIPT)
    watch_lines = fast_answers[-1][1].splitlines()
    events = [line.split('"type": "')[1].split('"')[0] for line in watch_lines]
    assert events == ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]


SPOT = "spotoptimizer.io"
# What RBAC would check for SCRIPT: discovery is not counted, requests answered with an error are.
SCRIPT_RBAC = Counter(
    {
        RbacRequest(SPOT, "spotagents", "create"): 2,
        RbacRequest(SPOT, "spotagents", "get"): 2,
        RbacRequest(SPOT, "spotagents", "patch"): 3,
        RbacRequest(SPOT, "spotagents/status", "patch"): 1,
        RbacRequest(SPOT, "spotagents", "list"): 1,
        RbacRequest("", "namespaces", "list"): 1,
        RbacRequest(SPOT, "spotagents", "delete"): 1,
        RbacRequest(SPOT, "spotagents", "watch"): 1,
    }
)


async def test_every_request_is_counted_for_rbac_per_client_on_both_paths(tmp_path: Path) -> None:
    for fast_path in (True, False):
        async with served_kube_api(tmp_path / str(fast_path), fast_path=fast_path) as cluster:
            await _replay(cluster)
            async with cluster.client.session.get(
                cluster.url + AGENTS, headers={"User-Agent": "kubectl/v1.35.0"}
            ) as rsp:
                assert rsp.status == 200
            by_client = cluster.api.rbac_requests_by_client
        kubectl = Counter({RbacRequest(SPOT, "spotagents", "list"): 1})
        assert by_client.pop("kubectl/v1.35.0") == kubectl
        ((_, replayed),) = by_client.items()  # the test's aiohttp session
        assert replayed == SCRIPT_RBAC
        assert cluster.api.rbac_requests == SCRIPT_RBAC + kubectl


async def test_the_request_log_is_bounded(tmp_path: Path) -> None:
    async with served_kube_api(tmp_path, request_log_limit=10) as cluster:
        for index in range(40):
            await cluster.client.create("leases", {"metadata": {"name": f"l{index}"}})
        log = cluster.api.request_log
    assert 10 <= len(log) <= 11
    assert [request.id for request in log] == list(range(40 - len(log), 40))
    assert log[-1].data["metadata"]["name"] == "l39"
    assert cluster.api.requests_served == 40


async def test_the_full_log_when_asked(tmp_path: Path) -> None:
    async with served_kube_api(tmp_path, request_log_limit=None) as cluster:
        for index in range(30):
            await cluster.client.create("leases", {"metadata": {"name": f"l{index}"}})
        assert len(cluster.api.request_log) == 30
        # kmock's views read the same log, with the URL parsed the Kubernetes way.
        creates = list(cluster.api[kmock.action.CREATE])
        assert len(creates) == 30
        assert {(request.namespace, request.resource) for request in creates} == {
            ("default", kmock.resource("coordination.k8s.io", "v1", "leases"))
        }


async def test_a_reaction_takes_over_then_the_emulation_resumes(kube_api: KubeCluster) -> None:
    """Error injection with kmock's DSL: the first PATCH fails with 500 and changes nothing."""
    client, api = kube_api.client, kube_api.api
    await client.create("spotagents", {"metadata": {"name": "a1"}, "spec": {}})
    api["patch"][:1] << 503

    failed, _ = await client.request("PATCH", f"{AGENTS}/a1", {"spec": {"mode": "off"}}, content_type=MERGE)
    assert failed == 503
    assert "mode" not in api.find("spotagents", "default", "a1")["spec"]  # type: ignore[index]

    served_before = api.fast_path_served
    patched = await client.patch("spotagents", "a1", {"spec": {"mode": "off"}})
    assert patched["spec"]["mode"] == "off"
    assert api.fast_path_served == served_before  # served through kmock's matching, not the fast path


async def test_namespaces_urls_parse_as_the_namespaces_resource(kube_api: KubeCluster) -> None:
    """kmock 0.8's parser fails on ``/api/v1/namespaces`` (its 500); ours reads it as a resource."""
    await kube_api.client.request("GET", "/api/v1/namespaces")
    await kube_api.client.request("GET", "/api/v1/namespaces/default")
    await kube_api.client.request("GET", "/api/v1/namespaces/default/events")
    parsed = [(r.resource.plural, r.namespace, r.name) for r in kube_api.api.request_log if r.resource]
    assert parsed == [
        ("namespaces", None, None),
        ("namespaces", None, "default"),
        ("events", "default", None),
    ]
