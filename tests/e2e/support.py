"""Pins, manifests and helpers of the kind e2e suite (its fixtures are in conftest.py)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "spot-optimizer"
# kind and the node image it was released with. Kubernetes >= 1.28 is needed: the CRDs' CEL rules use
# fieldPath. kubectl from scripts/fetch-tools.sh is 1.35 too.
KIND_VERSION = "v0.31.0"
KIND_NODE_IMAGE = (
    "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f"
)
OPERATOR_IMAGE = "spot-optimizer:e2e"
NAMESPACE = "spot-e2e"  # the release, its Lease, and moto
RELEASE = "spot-optimizer"  # the chart's fullname is then the release name
WORKLOADS = "default"  # where the tests create SpotAgents (the operator watches every namespace)
REGION = "us-east-1"
AMI = "ami-0123456789abcdef0"  # moto launches any image id
ACCESS_KEY = SECRET_KEY = "testing"  # moto takes any credentials; boto3 needs some
MOTO_PORT = 5000
DOCKER_INFO_TIMEOUT = 30.0

T = TypeVar("T")


def docker_problem() -> str | None:
    """Why no Docker engine can be used here, or None when ``docker info`` answers."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker CLI on PATH"
    try:
        answer = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_INFO_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"`docker info` did not answer within {DOCKER_INFO_TIMEOUT:.0f} s"
    if answer.returncode != 0 or not answer.stdout.strip():
        said = (answer.stderr or answer.stdout).strip().splitlines()
        return f"`docker info` failed: {said[-1] if said else f'exit status {answer.returncode}'}"
    return None


def run(command: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    """Run a command and return its output; fail the test with its output (not only the status)."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def kind_download_url(version: str) -> str:
    system = platform.system().lower()
    arch = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(arch, arch)
    return f"https://github.com/kubernetes-sigs/kind/releases/download/{version}/kind-{system}-{arch}"


def download_kind(directory: Path, version: str = KIND_VERSION) -> Path:
    """The pinned kind, downloaded once into ``directory`` and checked against the release's sha256."""
    target = directory / f"kind-{version}"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    url = kind_download_url(version)
    with urllib.request.urlopen(url + ".sha256sum", timeout=60) as response:
        expected = response.read().decode().split()[0]
    with urllib.request.urlopen(url, timeout=600) as response:
        data = response.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise RuntimeError(f"{url}: sha256 {actual}, but the release publishes {expected}")
    part = target.with_name(f"{target.name}.{os.getpid()}.part")
    part.write_bytes(data)
    part.chmod(0o755)
    part.replace(target)
    return target


def moto_version() -> str:
    """moto's version in the lock: the cluster's AWS is the one the integration tests use."""
    lock = (ROOT / "requirements" / "dev.txt").read_text()
    found = re.search(r"^moto(?:\[[^\]]*\])?==([^\s;\\]+)", lock, re.MULTILINE)
    assert found, "moto is not pinned in requirements/dev.txt"
    return found.group(1)


def moto_manifests(image: str) -> list[dict[str, Any]]:
    """moto_server as a Deployment and a Service named ``moto`` in NAMESPACE."""
    labels = {"app.kubernetes.io/name": "moto"}
    container = {
        "name": "moto",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["moto_server", "-H", "0.0.0.0", "-p", str(MOTO_PORT)],
        "ports": [{"name": "http", "containerPort": MOTO_PORT}],
        "readinessProbe": {"httpGet": {"path": "/moto-api/data.json", "port": "http"}, "periodSeconds": 2},
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "moto", "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "moto", "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": MOTO_PORT, "targetPort": "http"}],
            },
        },
    ]


def moto_url() -> str:
    """Where the operator pod reaches moto."""
    return f"http://moto.{NAMESPACE}.svc.cluster.local:{MOTO_PORT}"


def chart_values() -> dict[str, Any]:
    """One operator pod (it still takes the leader Lease), AWS = moto, short intervals for a quick test."""
    repository, _, tag = OPERATOR_IMAGE.partition(":")
    return {
        "replicaCount": 1,
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "aws": {"region": REGION, "endpointUrl": moto_url()},
        "operator": {
            "logFormat": "text",
            "intervals": {
                "observeSeconds": 5,
                "priceSeconds": 60,
                "decisionSeconds": 3600,
                "reconcileSeconds": 10,
                "cleanSeconds": 900,
            },
            # On EKS the pod gets its credentials from IRSA; moto needs only some.
            "extraEnv": [
                {"name": "AWS_ACCESS_KEY_ID", "value": ACCESS_KEY},
                {"name": "AWS_SECRET_ACCESS_KEY", "value": SECRET_KEY},
            ],
        },
    }


def spot_agent(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "spotoptimizer.io/v1alpha1",
        "kind": "SpotAgent",
        "metadata": {"name": name, "namespace": WORKLOADS},
        "spec": {
            "region": REGION,
            "image": AMI,
            "instanceTypes": ["m5.large", "m5a.large"],
            "zones": [f"{REGION}a", f"{REGION}b"],
            "mode": "auto-switch",
            "termination": {"terminateWaitSeconds": 0},
        },
    }


@dataclass(frozen=True)
class Kube:
    """kubectl on the kind cluster (pytest-kind's ``KindCluster``), with JSON answers."""

    cluster: Any

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        return str(
            self.cluster.kubectl(*args, input=stdin) if stdin is not None else self.cluster.kubectl(*args)
        )

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--output", "json"))

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        out = self("get", kind, name, "--namespace", namespace, "--ignore-not-found", "--output", "json")
        found: dict[str, Any] | None = json.loads(out) if out.strip() else None
        return found

    def apply(self, *documents: dict[str, Any]) -> None:
        self(
            "apply",
            "--filename",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}),
        )

    def logs(self, target: str, namespace: str, tail: int = 200) -> str:
        try:
            return self("logs", target, "--namespace", namespace, f"--tail={tail}")
        except subprocess.CalledProcessError as exc:
            return f"(no logs for {target}: exit status {exc.returncode})"


def until(check: Callable[[], T | None], within: float, what: Callable[[], str], interval: float = 2.0) -> T:
    """Poll ``check`` until it returns something truthy and return that; after ``within`` seconds, fail
    with ``what()`` (called then, so it can show the state and the operator's logs)."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within:.0f} s: {what()}")
        time.sleep(interval)
