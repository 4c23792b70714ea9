"""The standalone server, ``python -m spot_operator.sandbox.kubeapi``, used by clients via its kubeconfig."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
START_WITHIN = 180.0  # seconds; imports alone take several on a loaded machine


@dataclass
class Standalone:
    url: str
    kubeconfig: Path
    process: subprocess.Popen[str]


def _environment() -> dict[str, str]:
    paths = [str(REPO / "operator"), str(REPO / "agent"), str(REPO)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])}


def _stop(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[Standalone]:
    kubeconfig, log_path = tmp_path / "kubeconfig", tmp_path / "server.log"
    command = [
        sys.executable,
        "-m",
        "spot_operator.sandbox.kubeapi",
        "--port",
        "0",
        "--kubeconfig",
        str(kubeconfig),
    ]
    command += ["--namespace", "default", "--namespace", "sandbox"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, text=True, env=_environment()
        )
    deadline = time.monotonic() + START_WITHIN
    while "serving" not in (banner := log_path.read_text()):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise AssertionError(f"the server did not start: {banner}")
        time.sleep(0.1)
    url = banner.split("serving ", 1)[1].split()[0]
    yield Standalone(url, kubeconfig, process)
    assert _stop(process) == 0, log_path.read_text()


def test_it_writes_a_kubeconfig_the_operator_can_read(standalone: Standalone) -> None:
    from spot_operator.adapters.kubeconfig import from_kubeconfig

    connection = from_kubeconfig(standalone.kubeconfig)
    assert connection.server == standalone.url
    assert connection.token is None


def test_the_official_client_works_through_the_kubeconfig(standalone: Standalone) -> None:
    from kubernetes import client, config, watch

    api_client = config.new_client_from_config(config_file=str(standalone.kubeconfig))
    try:
        custom = client.CustomObjectsApi(api_client)
        where = ("spotoptimizer.io", "v1alpha1", "sandbox", "spotagents")
        body: dict[str, Any] = {
            "apiVersion": "spotoptimizer.io/v1alpha1",
            "kind": "SpotAgent",
            "metadata": {"name": "a1", "labels": {"app": "web"}},
            "spec": {"region": "us-east-1"},
        }
        created = custom.create_namespaced_custom_object(*where, body)
        patched = custom.patch_namespaced_custom_object_status(*where, "a1", {"status": {"phase": "Ready"}})
        selected = custom.list_namespaced_custom_object(*where, label_selector="app=web")
        unselected = custom.list_namespaced_custom_object(*where, label_selector="app!=web")
        namespaces = [item.metadata.name for item in client.CoreV1Api(api_client).list_namespace().items]
        events = list(watch.Watch().stream(custom.list_namespaced_custom_object, *where, timeout_seconds=1))
    finally:
        api_client.close()

    assert created["metadata"]["generation"] == 1
    assert patched["status"] == {"phase": "Ready"}
    assert [item["metadata"]["name"] for item in selected["items"]] == ["a1"]
    assert unselected["items"] == []
    assert namespaces == ["default", "sandbox"]
    assert [(event["type"], event["object"]["metadata"]["name"]) for event in events] == [("ADDED", "a1")]


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


@pytest.mark.slow
def test_a_kopf_process_logs_in_through_the_kubeconfig(standalone: Standalone, tmp_path: Path) -> None:
    """A separate operator process, as the sandbox runs ``spot-operator``: kopf's own kubeconfig login."""
    agents = f"{standalone.url}/apis/spotoptimizer.io/v1alpha1/namespaces/sandbox/spotagents"
    request = urllib.request.Request(
        agents,
        data=json.dumps({"metadata": {"name": "a1"}, "spec": {"region": "us-east-1"}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201

    handlers = REPO / "tests" / "integration" / "kubeapi" / "smoke_operator.py"
    log = (tmp_path / "kopf.log").open("w")
    operator = subprocess.Popen(
        [sys.executable, "-m", "kopf", "run", "--standalone", "--all-namespaces", str(handlers)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**_environment(), "KUBECONFIG": str(standalone.kubeconfig)},
    )
    try:
        deadline = time.monotonic() + START_WITHIN
        while _get(f"{agents}/a1").get("status", {}).get("phase") != "Created":
            assert operator.poll() is None, (tmp_path / "kopf.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "kopf.log").read_text()
            time.sleep(0.5)
    finally:
        operator.send_signal(signal.SIGTERM)
        operator.wait(timeout=60)
        log.close()
    finalizers = _get(f"{agents}/a1")["metadata"]["finalizers"]
    assert finalizers == ["kopf.zalando.org/KopfFinalizerMarker"]
