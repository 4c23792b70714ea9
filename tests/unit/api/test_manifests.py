"""Examples validate against the generated CRDs; invalid manifests are rejected, each naming its field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from spot_operator.api import Replica, SpotAgent, SwitchRequest
from spot_operator.api.validation import validate_manifest

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
MODELS = {"SpotAgent": SpotAgent, "Replica": Replica, "SwitchRequest": SwitchRequest}


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "examples" / name).read_text())
    return doc


def test_there_are_examples_for_every_mode_and_kind() -> None:
    docs = [yaml.safe_load(p.read_text()) for p in EXAMPLES]
    modes = {d["spec"].get("mode", "auto-switch") for d in docs if d["kind"] == "SpotAgent"}
    assert modes == {"auto-switch", "manual-replica", "off"}
    assert {d["kind"] for d in docs} == set(MODELS)
    targets = {d["spec"]["target"]["kind"] for d in docs if d["kind"] == "SwitchRequest"}
    assert targets == {"pool", "on-demand", "cheapest", "replica"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid_for_the_crd_and_the_model(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert validate_manifest(doc) == []
    MODELS[doc["kind"]].model_validate(doc)


def _agent(**spec: Any) -> dict[str, Any]:
    doc = _load("spotagent-auto-switch.yaml")
    doc["spec"].update(spec)
    return dict(doc)


def _without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for key in keys:
        del doc["spec"][key]
    return doc


def _switch(**spec: Any) -> dict[str, Any]:
    doc = _load("switchrequest-pool.yaml")
    doc["spec"].update(spec)
    return doc


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("unknown mode", _agent(mode="both"), "spec.mode"),
    ("empty instanceTypes", _agent(instanceTypes=[]), "spec.instanceTypes"),
    ("malformed instance type", _agent(instanceTypes=["M5 Large"]), "spec.instanceTypes[0]"),
    (
        "negative terminateWaitSeconds",
        _agent(termination={"terminateWaitSeconds": -1}),
        "spec.termination.terminateWaitSeconds",
    ),
    ("missing region", _without(_agent(), "region"), "spec.region"),
    ("malformed region", _agent(region="us_east_1"), "spec.region"),
    ("both launchTemplate and image", _agent(image="ami-0123456789abcdef0"), "spec.launchTemplate"),
    ("neither launchTemplate nor image", _without(_agent(), "launchTemplate"), "spec.launchTemplate"),
    (
        "launch template with id and name",
        _agent(launchTemplate={"id": "lt-0123456789abcdef0", "name": "web"}),
        "spec.launchTemplate.id",
    ),
    ("zone outside the region", _agent(zones=["us-west-2a"]), "spec.zones"),
    ("risk above 1", _agent(policy={"maxInterruptionRisk": 1.5}), "spec.policy.maxInterruptionRisk"),
    ("savings above 100 %", _agent(policy={"minSavingsPercent": 120}), "spec.policy.minSavingsPercent"),
    ("unknown field", _agent(replicaMode="manual"), "spec"),
    (
        "bad Elastic IP id",
        _agent(traffic={"elasticIpAllocationId": "1.2.3.4"}),
        "spec.traffic.elasticIpAllocationId",
    ),
    (
        "heartbeat timeout too short",
        _agent(agent={"heartbeatTimeoutSeconds": 1}),
        "spec.agent.heartbeatTimeoutSeconds",
    ),
    ("malformed pool", _switch(target={"kind": "pool", "pool": "m5.large"}), "spec.target.pool"),
    ("pool target without a pool", _switch(target={"kind": "pool"}), "spec.target.pool"),
    ("replica target without replicaRef", _switch(target={"kind": "replica"}), "spec.target.replicaRef"),
    ("priority out of range", _switch(priority=101), "spec.priority"),
    ("unknown switch reason", _switch(reason="whim"), "spec.reason"),
    ("switch without agentRef", _without(_switch(), "agentRef"), "spec.agentRef"),
    (
        "replica with malformed pool",
        {**_load("replica.yaml"), "spec": {"agentRef": {"name": "a"}, "pool": "x"}},
        "spec.pool",
    ),
]


@pytest.mark.parametrize(("doc", "field"), [(d, f) for _, d, f in INVALID], ids=[n for n, _, _ in INVALID])
def test_invalid_manifest_is_rejected_naming_the_field(doc: dict[str, Any], field: str) -> None:
    errors = validate_manifest(doc)
    assert errors, "accepted an invalid manifest"
    assert any(e.path == field for e in errors), f"expected an error at {field}, got {errors}"
    assert all(e.message for e in errors)


@pytest.mark.parametrize(("doc", "field"), [(d, f) for _, d, f in INVALID], ids=[n for n, _, _ in INVALID])
def test_the_model_rejects_what_the_crd_rejects(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError):
        MODELS[doc["kind"]].model_validate(doc)


def test_switch_spec_is_immutable() -> None:
    old = _load("switchrequest-pool.yaml")
    new = copy.deepcopy(old)
    new["spec"]["target"]["pool"] = "m5.large.us-east-1a"
    assert validate_manifest(new) == []
    errors = validate_manifest(new, old=old)
    assert [(e.path, e.message) for e in errors] == [("spec", "spec is immutable")]
    assert validate_manifest(old, old=old) == []


def test_wrong_api_version_and_kind_are_named() -> None:
    doc = _load("replica.yaml")
    assert validate_manifest({**doc, "apiVersion": "v1"})[0].path == "apiVersion"
    assert validate_manifest({**doc, "kind": "Replicaset"})[0].path == "kind"
