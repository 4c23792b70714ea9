"""The CRDs in crds/ are what the models generate, and they are structural, as Kubernetes requires."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from spot_operator.api.crdgen import CRDS, crd_for, main, render

ROOT = Path(__file__).resolve().parents[3]

# Short names and resource names the core API and common add-ons already use.
BUILTIN_SHORT_NAMES = {
    "sa",
    "svc",
    "po",
    "no",
    "ns",
    "cm",
    "ds",
    "deploy",
    "rs",
    "rc",
    "sts",
    "pv",
    "pvc",
    "ep",
    "ev",
    "ing",
    "netpol",
    "pdb",
    "psp",
    "sc",
    "hpa",
    "cj",
    "crd",
    "crds",
    "csr",
    "limits",
    "quota",
    "pc",
}


def _nodes(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path or "<root>", schema)]
    for name, sub in schema.get("properties", {}).items():
        out += _nodes(sub, f"{path}.{name}")
    if "items" in schema:
        out += _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        out += _nodes(schema["additionalProperties"], f"{path}{{}}")
    return out


def test_checked_in_crds_match_the_models(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    for info in CRDS:
        generated = (tmp_path / info.filename).read_text()
        checked_in = (ROOT / "crds" / info.filename).read_text()
        assert generated == checked_in, (
            f"crds/{info.filename} is stale: run python -m spot_operator.api.crdgen"
        )
    assert sorted(p.name for p in (ROOT / "crds").glob("*.yaml")) == sorted(i.filename for i in CRDS)


def test_check_mode_detects_a_stale_file(tmp_path: Path) -> None:
    main([str(tmp_path)])
    stale = tmp_path / CRDS[0].filename
    stale.write_text(stale.read_text().replace("auto-switch", "auto-swtich", 1))
    assert main(["--check", str(tmp_path)]) == 1
    assert main(["--check", str(ROOT / "crds")]) == 0


@pytest.mark.parametrize("info", CRDS, ids=lambda i: i.kind)
def test_schema_is_structural(info: Any) -> None:
    schema = crd_for(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _nodes(schema):
        assert "$ref" not in node, path
        assert "anyOf" not in node and "oneOf" not in node and "allOf" not in node, path
        assert "title" not in node, path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        if "properties" in node:
            assert "additionalProperties" not in node, f"{path}: properties and additionalProperties"


@pytest.mark.parametrize("info", CRDS, ids=lambda i: i.kind)
def test_every_spec_field_is_described_for_kubectl_explain(info: Any) -> None:
    schema = crd_for(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    undescribed = [
        p for p, n in _nodes(schema) if not p.endswith("[]") and "{" not in p and not n.get("description")
    ]
    assert undescribed == []


def test_names_status_and_columns() -> None:
    crds = {info.kind: crd_for(info) for info in CRDS}
    for kind, crd in crds.items():
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}, kind
        assert crd["spec"]["scope"] == "Namespaced"
        assert not set(crd["spec"]["names"]["shortNames"]) & BUILTIN_SHORT_NAMES, kind
    columns = [c["name"] for c in crds["SpotAgent"]["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Mode", "Primary", "Pool", "Price", "Savings", "Phase", "Age"]


def test_cel_rules_compile_and_the_immutable_rule_is_on_switch_spec() -> None:
    import celpy

    env = celpy.Environment()
    rules = []
    for info in CRDS:
        schema = crd_for(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in _nodes(schema):
            for rule in node.get("x-kubernetes-validations", []):
                env.compile(rule["rule"])
                assert rule["message"], f"{info.kind}{path}: a rule without a message"
                rules.append((info.kind, path, rule["rule"]))
    assert ("SwitchRequest", ".spec", "self == oldSelf") in rules
    assert any(k == "SpotAgent" and "launchTemplate" in r and "image" in r for k, _, r in rules)


def test_rendered_yaml_round_trips() -> None:
    for info in CRDS:
        assert yaml.safe_load(render(info)) == crd_for(info)
