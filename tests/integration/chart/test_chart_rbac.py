"""Least-privilege RBAC: the grants file says what the operator may do, and the rendered roles say no more.

``charts/spot-optimizer/rbac-grants.yaml`` is the machine-readable list; ``support.load_grants()`` reads it
for any test that compares it with what the operator's handlers use.
"""

from __future__ import annotations

import pytest

from tests.integration.chart.support import (
    CHART,
    NAMESPACE,
    Doc,
    Grant,
    Render,
    find,
    load_grants,
    load_yaml,
    one,
    rule_triples,
)


def triples(group: str, resources: list[str], verbs: list[str]) -> set[Grant]:
    return {(group, r, v) for r in resources for v in verbs}


SPOT = ["spotagents", "replicas", "switchrequests"]
# What the operator needs, in both modes (written out here on purpose: a change to the grants file must
# be made twice, deliberately).
BOTH_MODES: set[Grant] = (
    triples("spotoptimizer.io", SPOT, ["list", "watch", "patch"])
    | triples("spotoptimizer.io", ["replicas", "switchrequests"], ["create", "get"])
    | triples("spotoptimizer.io", [f"{k}/status" for k in SPOT], ["patch"])
    | triples("", ["events"], ["create"])
    | triples("", ["secrets"], ["get", "create"])
)
# kopf runs with its scanning off and explicit namespaces (handlers/lifecycle.py): nothing cluster-scoped.
CLUSTER_ONLY: set[Grant] = set()
NAMESPACED_ONLY: set[Grant] = set()
# Leader election (spot_operator.runtime.leader): a Lease in the operator's own namespace, in both modes.
LEADER: set[Grant] = triples("coordination.k8s.io", ["leases"], ["get", "create", "update"])
CLUSTER_SCOPED_RESOURCES = {"customresourcedefinitions", "namespaces"}


def test_grants_file_is_exactly_the_needed_permissions() -> None:
    assert load_grants("cluster", where="watched") == BOTH_MODES | CLUSTER_ONLY
    assert load_grants("namespaced", where="watched") == BOTH_MODES | NAMESPACED_ONLY
    assert load_grants(where="release") == LEADER
    # kopf runs standalone (spot_operator.main): no grant for kopf's peering resources.
    assert "kopf.dev" not in {group for group, _, _ in load_grants()}


def test_grants_file_entries_are_well_formed() -> None:
    for grant in load_yaml(CHART / "rbac-grants.yaml")["grants"]:
        assert {"apiGroup", "resources", "verbs", "modes", "scope", "why"} <= set(grant)
        assert set(grant) <= {"apiGroup", "resources", "verbs", "modes", "scope", "why", "in"}
        assert grant.get("in", "watched") in {"watched", "release"}
        assert set(grant["modes"]) <= {"cluster", "namespaced"}
        assert grant["modes"]
        assert grant["why"].strip()
        cluster_scoped = {r for r in grant["resources"] if r in CLUSTER_SCOPED_RESOURCES}
        assert grant["scope"] == ("cluster" if cluster_scoped else "namespaced"), grant
        assert "*" not in grant["verbs"] + grant["resources"] + [grant["apiGroup"]]


def bindings_point_at_the_service_account(docs: list[Doc], binding_kind: str, role_kind: str) -> None:
    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    roles = {(r["metadata"].get("namespace"), r["metadata"]["name"]) for r in find(docs, role_kind)}
    bindings = find(docs, binding_kind)
    assert bindings
    for binding in bindings:
        ref = binding["roleRef"]
        assert ref["apiGroup"] == "rbac.authorization.k8s.io"
        assert ref["kind"] == role_kind
        assert (binding["metadata"].get("namespace"), ref["name"]) in roles
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]


def test_cluster_wide_mode_renders_one_cluster_role_with_the_grants(render: Render) -> None:
    docs = render()
    role = one(docs, "ClusterRole")
    assert rule_triples(role["rules"]) == load_grants("cluster", where="watched")
    bindings_point_at_the_service_account(docs, "ClusterRoleBinding", "ClusterRole")
    assert [r["metadata"]["name"] for r in find(docs, "Role")] == ["spot-spot-optimizer-leader"]
    assert_leader_election_role(docs)


def assert_leader_election_role(docs: list[Doc]) -> None:
    """The Lease grants live in a Role of the release namespace only."""
    role = one(docs, "Role", "spot-spot-optimizer-leader")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert rule_triples(role["rules"]) == load_grants(where="release") == LEADER
    binding = one(docs, "RoleBinding", "spot-spot-optimizer-leader")
    assert binding["metadata"]["namespace"] == NAMESPACE
    bindings_point_at_the_service_account(docs, "RoleBinding", "Role")


def test_namespaced_mode_renders_a_role_per_namespace(render: Render) -> None:
    docs = render("namespaced-values.yaml")
    roles = find(docs, "Role", "spot-spot-optimizer")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert rule_triples(role["rules"]) == load_grants("namespaced", "namespaced", "watched")
    watched = [b["metadata"]["namespace"] for b in find(docs, "RoleBinding", "spot-spot-optimizer")]
    assert sorted(watched) == ["team-a", "team-b"]
    bindings_point_at_the_service_account(docs, "RoleBinding", "Role")
    assert_leader_election_role(docs)
    # Nothing cluster-scoped is granted: no ClusterRole at all (a Role cannot grant cluster-scoped resources).
    assert not find(docs, "ClusterRole") and not find(docs, "ClusterRoleBinding")
    assert load_grants("namespaced", "cluster", "watched") == set()
    everything = set().union(*(rule_triples(r["rules"]) for r in roles))
    assert everything == load_grants("namespaced", where="watched")
    assert "namespaces" not in {r for _, r, _ in everything}


@pytest.mark.parametrize("values", [(), ("namespaced-values.yaml",), ("production-values.yaml",)])
def test_no_wildcards_and_no_escalation(render: Render, values: tuple[str, ...]) -> None:
    docs = render(*values)
    rules = [rule for doc in find(docs, "ClusterRole") + find(docs, "Role") for rule in doc["rules"]]
    assert rules
    for rule in rules:
        assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], rule
        assert not set(rule["verbs"]) & {"escalate", "bind", "impersonate", "deletecollection"}
        assert "rbac.authorization.k8s.io" not in rule["apiGroups"]
        assert "resourceNames" not in rule
        assert "nonResourceURLs" not in rule


def test_no_service_account_no_rbac_subject_drift(render: Render) -> None:
    docs = render(sets=("serviceAccount.create=false", "serviceAccount.name=ops-operator"))
    assert not find(docs, "ServiceAccount")
    binding = one(docs, "ClusterRoleBinding")
    assert binding["subjects"][0]["name"] == "ops-operator"
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops-operator"


def test_rendered_rules_are_the_grants_and_the_lease_in_every_scenario(
    scenario: tuple[str, list[Doc]],
) -> None:
    """Under every ci/ values file the roles grant exactly the grants file (its mode, plus the leader Lease
    unless standalone): nothing of kopf's peering (kopf.dev), which the operator does not use."""
    name, docs = scenario
    roles = find(docs, "ClusterRole") + find(docs, "Role")
    rendered = set().union(*(rule_triples(role["rules"]) for role in roles))
    mode = "namespaced" if name == "namespaced" else "cluster"
    lease = set() if name == "standalone" else LEADER
    assert rendered == load_grants(mode, where="watched") | lease
    assert "kopf.dev" not in {group for group, _, _ in rendered}
    assert (rendered >= LEADER) is (name != "standalone")


def test_standalone_has_no_leader_election_role(render: Render) -> None:
    docs = render("standalone-values.yaml")
    assert not find(docs, "Role")
    assert not find(docs, "RoleBinding")
