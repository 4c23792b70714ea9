"""Paths, constants and helpers shared by the chart and image tests."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "spot-optimizer"
CI_VALUES = CHART / "ci"
KUBE_VERSION = "1.35.0"  # helm --kube-version and the kubernetes-validate schema set
RELEASE = "spot"
NAMESPACE = "spot-system"

Doc = dict[str, Any]
# render(*values_files, sets=(...)) -> the documents helm template prints (the `render` fixture).
Render = Callable[..., list[Doc]]


@dataclass(frozen=True)
class Tools:
    helm: Path
    kubectl: Path
    hadolint: Path
    env: dict[str, str]

    def run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        binary = str(getattr(self, tool))
        proc = subprocess.run(
            [binary, *args], capture_output=True, text=True, env=self.env, timeout=120, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc


def values_args(values_files: tuple[str, ...], sets: tuple[str, ...]) -> list[str]:
    args: list[str] = []
    for name in values_files:
        args += ["-f", str(CI_VALUES / name)]
    for item in sets:
        args += ["--set", item]
    return args


# The scenarios every structural test runs over: (id, values files).
SCENARIOS: dict[str, tuple[str, ...]] = {
    "defaults": (),
    "namespaced": ("namespaced-values.yaml",),
    "monitoring": ("monitoring-values.yaml",),
    "production": ("production-values.yaml", "monitoring-values.yaml"),
    "standalone": ("standalone-values.yaml",),
}


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def load_yaml(path: Path) -> Any:
    with path.open() as fh:
        return yaml.safe_load(fh)


def load_json(path: Path) -> Any:
    with path.open() as fh:
        return json.load(fh)


Grant = tuple[str, str, str]  # (apiGroup, resource, verb)


def load_grants(mode: str | None = None, scope: str | None = None, where: str | None = None) -> set[Grant]:
    """The (apiGroup, resource, verb) triples of ``rbac-grants.yaml``, optionally for one mode ("cluster",
    "namespaced"), one scope ("cluster", "namespaced") and one place ("watched", "release")."""
    grants = load_yaml(CHART / "rbac-grants.yaml")["grants"]
    return {
        (g["apiGroup"], resource, verb)
        for g in grants
        if (mode is None or mode in g["modes"])
        and (scope is None or g["scope"] == scope)
        and (where is None or g.get("in", "watched") == where)
        for resource in g["resources"]
        for verb in g["verbs"]
    }


def rule_triples(rules: list[dict[str, Any]]) -> set[Grant]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }
