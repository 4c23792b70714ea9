"""The chart's CRDs are the repository's, and the examples are valid custom resources of the rendered CRDs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from spot_operator.api.validation import _to_jsonschema, validate_manifest
from tests.integration.chart.support import CHART, ROOT, Doc, Render, find

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def test_chart_crds_are_byte_identical_copies() -> None:
    repo = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*")}
    assert repo, "crds/ is empty"
    assert sorted(chart) == sorted(repo), "charts/spot-optimizer/crds/ must hold exactly the files of crds/"
    for name, data in repo.items():
        assert chart[name] == data, (
            f"charts/spot-optimizer/crds/{name} differs from crds/{name}: copy it again"
        )


def rendered_crds(render: Render) -> dict[str, Doc]:
    return {
        d["spec"]["names"]["kind"]: d
        for d in find(render(), "CustomResourceDefinition")
        if d["spec"]["group"] == "spotoptimizer.io"
    }


def test_include_crds_renders_the_repository_crds(render: Render) -> None:
    rendered = {d["metadata"]["name"]: d for d in rendered_crds(render).values()}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        with path.open() as fh:
            crd = yaml.safe_load(fh)
        assert rendered[crd["metadata"]["name"]] == crd


def load_examples() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in EXAMPLES:
        with path.open() as fh:
            out += [(f"{path.name}#{i}", doc) for i, doc in enumerate(yaml.safe_load_all(fh)) if doc]
    return out


def schema_errors(crds: dict[str, Doc], doc: dict[str, Any]) -> list[str]:
    crd = crds[doc["kind"]]
    group, version = doc["apiVersion"].split("/")
    assert group == crd["spec"]["group"]
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version and v["served"]]
    schema = _to_jsonschema(served["schema"]["openAPIV3Schema"])
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_there_are_examples_of_every_kind(render: Render) -> None:
    kinds = {doc["kind"] for _, doc in load_examples()}
    assert kinds == set(rendered_crds(render))


@pytest.mark.parametrize(("name", "doc"), load_examples(), ids=[n for n, _ in load_examples()])
def test_example_is_valid_against_the_rendered_crd(render: Render, name: str, doc: dict[str, Any]) -> None:
    crds = rendered_crds(render)
    assert schema_errors(crds, doc) == []
    # Namespaced kinds: the example says where it goes.
    assert crds[doc["kind"]]["spec"]["scope"] == "Namespaced"
    assert doc["metadata"]["namespace"]
    # The same check the API server makes, CEL rules included.
    assert [str(e) for e in validate_manifest(doc)] == []


def test_a_broken_example_is_rejected(render: Render) -> None:
    crds = rendered_crds(render)
    (agent,) = [doc for name, doc in load_examples() if name.startswith("spotagent-auto-switch")]
    bad_enum = copy.deepcopy(agent)
    bad_enum["spec"]["mode"] = "sometimes"
    assert schema_errors(crds, bad_enum)
    assert validate_manifest(bad_enum)
    missing = copy.deepcopy(agent)
    del missing["spec"]["region"]
    assert schema_errors(crds, missing)
    assert validate_manifest(missing)


def test_crd_upgrade_is_documented() -> None:
    """Helm never upgrades crds/: the chart README and the install guide say how to."""
    for doc in (CHART / "README.md", ROOT / "docs" / "INSTALL.md"):
        text = Path(doc).read_text()
        assert "kubectl apply --server-side -f crds/" in text, doc
