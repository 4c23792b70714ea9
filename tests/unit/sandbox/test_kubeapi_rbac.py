"""The RBAC attributes the API emulation records for each request: the verb and resource the API server's
authorizer would check (https://kubernetes.io/docs/reference/access-authn-authz/authorization/#determine-the-request-verb)."""

from __future__ import annotations

import pytest

from spot_operator.sandbox.kubeapi import RbacRequest, parse_path, rbac_request

SPOT = "spotoptimizer.io"
AGENTS = "/apis/spotoptimizer.io/v1alpha1/namespaces/default/spotagents"
ALL_AGENTS = "/apis/spotoptimizer.io/v1alpha1/spotagents"  # across namespaces
SECRETS = "/api/v1/namespaces/default/secrets"


@pytest.mark.parametrize(
    ("method", "path", "params", "expected"),
    [
        ("GET", f"{AGENTS}/web", {}, (SPOT, "spotagents", "get")),
        ("HEAD", f"{AGENTS}/web", {}, (SPOT, "spotagents", "get")),
        ("GET", AGENTS, {}, (SPOT, "spotagents", "list")),
        ("GET", ALL_AGENTS, {"limit": "500"}, (SPOT, "spotagents", "list")),
        ("GET", AGENTS, {"watch": "true"}, (SPOT, "spotagents", "watch")),
        ("GET", ALL_AGENTS, {"watch": "1"}, (SPOT, "spotagents", "watch")),
        ("GET", f"{AGENTS}/web", {"watch": "true"}, (SPOT, "spotagents", "watch")),
        ("GET", AGENTS, {"watch": "false"}, (SPOT, "spotagents", "list")),
        ("POST", AGENTS, {}, (SPOT, "spotagents", "create")),
        ("PATCH", f"{AGENTS}/web", {}, (SPOT, "spotagents", "patch")),
        ("PUT", f"{AGENTS}/web", {}, (SPOT, "spotagents", "update")),
        ("DELETE", f"{AGENTS}/web", {}, (SPOT, "spotagents", "delete")),
        ("DELETE", AGENTS, {"labelSelector": "a=b"}, (SPOT, "spotagents", "deletecollection")),
        ("PATCH", f"{AGENTS}/web/status", {}, (SPOT, "spotagents/status", "patch")),
        ("PUT", f"{AGENTS}/web/status", {}, (SPOT, "spotagents/status", "update")),
        ("GET", f"{AGENTS}/web/status", {}, (SPOT, "spotagents/status", "get")),
        ("GET", f"{SECRETS}/web-spot-agent-token", {}, ("", "secrets", "get")),
        ("POST", SECRETS, {}, ("", "secrets", "create")),
        ("POST", "/api/v1/namespaces/default/events", {}, ("", "events", "create")),
        (
            "POST",
            "/apis/events.k8s.io/v1/namespaces/default/events",
            {},
            ("events.k8s.io", "events", "create"),
        ),
        ("GET", "/api/v1/namespaces", {}, ("", "namespaces", "list")),
        ("GET", "/api/v1/namespaces/default", {}, ("", "namespaces", "get")),
        ("PUT", "/api/v1/namespaces/default/status", {}, ("", "namespaces/status", "update")),
        ("PUT", "/api/v1/namespaces/default/finalize", {}, ("", "namespaces/finalize", "update")),
        (
            "GET",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            {"watch": "true"},
            ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
        ),
        (
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/spot-system/leases/spot-optimizer",
            {},
            ("coordination.k8s.io", "leases", "update"),
        ),
    ],
)
def test_each_request_maps_to_the_verb_and_resource_rbac_checks(
    method: str, path: str, params: dict[str, str], expected: tuple[str, str, str]
) -> None:
    assert rbac_request(parse_path(path), method, params) == RbacRequest(*expected)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api",
        "/apis",
        "/version",
        "/api/v1",
        "/apis/spotoptimizer.io",
        "/apis/spotoptimizer.io/v1alpha1",
        "/healthz",
    ],
)
def test_discovery_and_other_non_resource_urls_are_not_resource_requests(path: str) -> None:
    assert rbac_request(parse_path(path), "GET", {}) is None


def test_a_method_rbac_has_no_verb_for_is_not_recorded() -> None:
    assert rbac_request(parse_path(AGENTS), "OPTIONS", {}) is None
