"""The chart, linted and rendered by the real helm, and the rendered objects checked.

Built-in objects are validated with kubernetes-validate (strict: unknown fields are errors) against the
Kubernetes version in ``KUBE_VERSION``; the few custom resources the chart renders are checked by shape.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import kubernetes_validate
import pytest
import yaml

from spot_operator import settings as operator_settings
from tests.integration.chart.support import (
    CHART,
    CI_VALUES,
    KUBE_VERSION,
    NAMESPACE,
    SCENARIOS,
    Doc,
    Render,
    Tools,
    find,
    load_yaml,
    one,
    values_args,
)

# Kinds the chart may render that are not built into Kubernetes (so kubernetes-validate has no schema).
CUSTOM_KINDS = {"ServiceMonitor"}
# Environment variables the operator reads besides SPOT_OPERATOR_<FIELD>: see spot_operator.settings.
OTHER_ENV = {
    "DATABASE_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "POD_NAMESPACE",
}


def deployment(docs: list[Doc]) -> Doc:
    return one(docs, "Deployment")


def container(docs: list[Doc]) -> dict[str, Any]:
    containers = deployment(docs)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    return dict(containers[0])


def env_of(docs: list[Doc]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(docs)["env"]}


def plain_env(docs: list[Doc]) -> dict[str, str]:
    return {name: e["value"] for name, e in env_of(docs).items() if "value" in e}


def test_tools_are_the_pinned_versions(tools: Tools) -> None:
    assert tools.run("helm", "version", "--template", "{{.Version}}").stdout.strip() == "v4.1.4"
    assert '"gitVersion": "v1.35.2"' in tools.run("kubectl", "version", "--client", "-o", "json").stdout


@pytest.mark.parametrize("values_file", ["", *sorted(p.name for p in CI_VALUES.glob("*.yaml"))])
def test_helm_lint_strict(tools: Tools, values_file: str) -> None:
    files = (values_file,) if values_file else ()
    proc = tools.run("helm", "lint", "--strict", str(CHART), *values_args(files, ()))
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout
    assert "[ERROR]" not in proc.stdout
    assert "[WARNING]" not in proc.stdout


def test_every_ci_values_file_is_a_scenario() -> None:
    used = {name for files in SCENARIOS.values() for name in files}
    assert used == {p.name for p in CI_VALUES.glob("*.yaml")}


def test_built_in_objects_are_valid_kubernetes(scenario: tuple[str, list[Doc]]) -> None:
    _, docs = scenario
    validated, custom = 0, set()
    for doc in docs:
        try:
            version = kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            custom.add(doc["kind"])
            continue
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']} {doc['metadata'].get('name')}: {exc.message} at {list(exc.path)}")
        assert version == "1.35"
        validated += 1
    assert custom <= CUSTOM_KINDS
    assert validated >= 8  # CRDs, Deployment, ServiceAccount, Services, RBAC at the least


def test_validator_rejects_what_the_api_server_would(render: Render) -> None:
    """kubernetes-validate is live: a typo and a wrong type in the rendered Deployment are caught."""
    dep = deployment(render())
    typo = copy.deepcopy(dep)
    typo["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    wrong_type = copy.deepcopy(dep)
    wrong_type["spec"]["replicas"] = "two"
    for bad in (typo, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, KUBE_VERSION, strict=True)


def test_objects_in_each_scenario(scenario: tuple[str, list[Doc]]) -> None:
    name, docs = scenario
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("Deployment") == 1
    assert kinds.count("ServiceAccount") == 1
    assert {d["metadata"]["name"] for d in find(docs, "Service")} == {
        "spot-spot-optimizer-agent-api",
        "spot-spot-optimizer-metrics",
    }
    spot_crds = [
        d for d in find(docs, "CustomResourceDefinition") if d["spec"]["group"] == "spotoptimizer.io"
    ]
    assert len(spot_crds) == 3
    has_monitoring = name in {"monitoring", "production"}
    assert len(find(docs, "ServiceMonitor")) == int(has_monitoring)
    assert len(find(docs, "ConfigMap")) == int(has_monitoring)
    assert len(find(docs, "Secret")) == int(name == "production")
    # Leader election is the operator's own Lease: nothing of kopf's peering, and no disruption budget
    # (only the leader is Ready, so minAvailable would block every drain of the leader's node).
    assert not find(docs, "PodDisruptionBudget")
    assert not [d for d in find(docs, "CustomResourceDefinition") if d["spec"]["group"] == "kopf.dev"]
    assert not find(docs, "ClusterKopfPeering") and not find(docs, "KopfPeering")
    assert not [d for d in docs if d["apiVersion"].startswith(("kopf.dev/", "policy/"))]
    # No post-install hooks either (kopf's peering objects were created by one).
    assert not [d for d in docs if "helm.sh/hook" in d["metadata"].get("annotations", {})]
    assert "kopf.dev" not in yaml.safe_dump_all(docs)
    if name == "namespaced":
        assert {d["metadata"]["namespace"] for d in find(docs, "Role")} == {"team-a", "team-b", NAMESPACE}
    elif name != "standalone":
        assert [r["metadata"]["namespace"] for r in find(docs, "Role")] == [NAMESPACE]  # the Lease only


def test_namespaced_objects_go_to_the_release_namespace(scenario: tuple[str, list[Doc]]) -> None:
    _, docs = scenario
    for doc in docs:
        if doc["kind"] in {"Deployment", "ServiceAccount", "Service", "Secret"}:
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]


def test_pod_and_container_security(scenario: tuple[str, list[Doc]]) -> None:
    _, docs = scenario
    pod = deployment(docs)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(docs)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in sc or sc["privileged"] is False
    # The root filesystem is read-only: /tmp is a writable emptyDir.
    mounts = {m["mountPath"]: m["name"] for m in container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]


def test_probes_and_ports_match_the_operator_settings(scenario: tuple[str, list[Doc]]) -> None:
    _, docs = scenario
    c = container(docs)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"health": 8081, "metrics": 9090, "agent-api": 8443}
    env = plain_env(docs)
    assert int(env["SPOT_OPERATOR_HEALTH_PORT"]) == ports["health"]
    assert int(env["SPOT_OPERATOR_METRICS_PORT"]) == ports["metrics"]
    assert int(env["SPOT_OPERATOR_AGENT_API_PORT"]) == ports["agent-api"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert c["resources"]["requests"]
    assert c["resources"]["limits"]["memory"]


def test_environment_is_a_valid_operator_configuration(scenario: tuple[str, list[Doc]]) -> None:
    """Every variable the chart sets is one the operator reads, and the operator accepts the values."""
    name, docs = scenario
    env = env_of(docs)
    fields = {operator_settings.PREFIX + f.upper() for f in operator_settings.Settings.model_fields}
    unknown = set(env) - fields - OTHER_ENV
    assert not unknown, f"variables the operator does not read: {sorted(unknown)}"
    values = plain_env(docs)
    if "DATABASE_URL" in env:
        values["DATABASE_URL"] = "postgresql://user:password@db:5432/spot"  # from the Secret at run time
    parsed = operator_settings.from_env(values)
    assert parsed.peering == "spot-optimizer"
    assert parsed.standalone is (name == "standalone")
    assert parsed.namespaces == (("team-a", "team-b") if name == "namespaced" else ())
    assert values["AWS_REGION"] == values["AWS_DEFAULT_REGION"]
    # Leader election keeps its Lease in the pod's namespace (main.py reads POD_NAMESPACE).
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_replicas_and_update_strategy(render: Render) -> None:
    docs = render()
    dep = deployment(docs)
    assert dep["spec"]["replicas"] == 2
    # Only the leader is Ready: a rolling update would wait forever for a new pod to become Ready.
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert deployment(render("standalone-values.yaml"))["spec"]["replicas"] == 1


def test_database_url_comes_from_a_secret(render: Render) -> None:
    assert "DATABASE_URL" not in env_of(render())  # no database configured: the operator runs without one

    existing = env_of(render("namespaced-values.yaml"))["DATABASE_URL"]
    assert existing["valueFrom"] == {"secretKeyRef": {"name": "spot-optimizer-db", "key": "dsn"}}

    docs = render("production-values.yaml")
    ref = env_of(docs)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    secret = one(docs, "Secret", ref["name"])
    assert secret["stringData"][ref["key"]] == "postgresql://spot:secret@db.internal:5432/spot"
    assert "value" not in env_of(docs)["DATABASE_URL"]


def test_aws_settings(render: Render) -> None:
    docs = render("production-values.yaml")
    env = plain_env(docs)
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["SPOT_OPERATOR_SQS_QUEUE_URL"] == (
        "https://sqs.eu-west-1.amazonaws.com/123456789012/spot-optimizer-interruptions"
    )
    sa = one(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == (
        "arn:aws:iam::123456789012:role/spot-optimizer"
    )
    assert container(docs)["image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/spot-optimizer:0.1.0"
    defaults = render()
    assert "SPOT_OPERATOR_SQS_QUEUE_URL" not in plain_env(defaults)
    assert "annotations" not in one(defaults, "ServiceAccount")["metadata"]
    assert container(defaults)["image"] == f"spot-optimizer:{load_yaml(CHART / 'Chart.yaml')['appVersion']}"


def test_image_by_digest(render: Render) -> None:
    digest = "sha256:" + "ab" * 32
    docs = render(sets=(f"image.digest={digest}",))
    assert container(docs)["image"] == f"spot-optimizer@{digest}"


def test_services_select_the_operator_pods(scenario: tuple[str, list[Doc]]) -> None:
    _, docs = scenario
    pod_labels = deployment(docs)["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in container(docs)["ports"]}
    for svc in find(docs, "Service"):
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in port_names
    agent_api = one(docs, "Service", "spot-spot-optimizer-agent-api")
    assert [p["port"] for p in agent_api["spec"]["ports"]] == [8443]
    metrics = one(docs, "Service", "spot-spot-optimizer-metrics")
    assert metrics["spec"]["type"] == "ClusterIP"  # metrics are never exposed by a load balancer
    assert [p["targetPort"] for p in metrics["spec"]["ports"]] == ["metrics"]


def test_agent_api_load_balancer(render: Render) -> None:
    svc = one(render("production-values.yaml"), "Service", "spot-spot-optimizer-agent-api")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]
    assert svc["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"


def test_service_monitor_scrapes_the_metrics_service(render: Render) -> None:
    docs = render("monitoring-values.yaml")
    sm = one(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = sm["spec"]["selector"]["matchLabels"]
    selected = [s for s in find(docs, "Service") if selector.items() <= s["metadata"]["labels"].items()]
    assert [s["metadata"]["name"] for s in selected] == ["spot-spot-optimizer-metrics"]
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "15s"
    assert re.fullmatch(r"\d+s", endpoint["scrapeTimeout"])


def test_values_of_kopf_peering_and_of_a_disruption_budget_are_refused(tools: Tools) -> None:
    """Removed settings fail the schema instead of being ignored (an upgrade that still sets them)."""
    removed = {
        "peering.installCrds=false": "'installCrds' not allowed",
        "peering.createObjects=false": "'createObjects' not allowed",
        "podDisruptionBudget.enabled=true": "'podDisruptionBudget' not allowed",
        "podDisruptionBudget.minAvailable=1": "'podDisruptionBudget' not allowed",
    }
    for setting, message in removed.items():
        proc = tools.run(
            "helm", "template", "spot", str(CHART), "--namespace", NAMESPACE, "--set", setting, check=False
        )
        assert proc.returncode != 0, setting
        assert message in proc.stderr, proc.stderr


@pytest.mark.parametrize("values", [(), ("namespaced-values.yaml", "monitoring-values.yaml")])
def test_chart_name_fits_kubernetes_limits(tools: Tools, values: tuple[str, ...]) -> None:
    long_release = "r" * 53
    proc = tools.run(
        "helm", "template", long_release, str(CHART), "--namespace", NAMESPACE, *values_args(values, ())
    )
    names = re.findall(r"^  name: (\S+)$", proc.stdout, flags=re.MULTILINE)
    assert names
    assert max(len(n) for n in names) <= 63


def notes(tools: Tools, *values_files: str) -> str:
    proc = tools.run(
        "helm",
        "install",
        "spot",
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--dry-run=client",
        *values_args(values_files, ()),
    )
    return proc.stdout.split("NOTES:", 1)[1]


def test_notes_point_at_what_is_missing(tools: Tools) -> None:
    default = notes(tools)
    assert "serviceAccount.roleArn is empty" in default
    assert "no database" in default
    assert "not reachable from EC2 instances" in default
    assert "kubectl apply --server-side -f crds/" in default
    production = notes(tools, "production-values.yaml")
    assert "roleArn is empty" not in production
    assert "no database" not in production
    assert "type LoadBalancer" in production
    assert "team-a, team-b" in notes(tools, "namespaced-values.yaml")
