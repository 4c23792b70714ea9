"""values.schema.json: the defaults and CI values pass, bad values are refused by helm, and its bounds are
the operator's own (``spot_operator.settings``)."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from annotated_types import Ge, Le

from spot_operator.settings import Settings
from tests.integration.chart.support import CHART, CI_VALUES, Tools, load_json, load_yaml

SCHEMA = load_json(CHART / "values.schema.json")


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = (
            merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def test_schema_is_a_valid_draft7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["additionalProperties"] is False


@pytest.mark.parametrize("name", ["", *sorted(p.name for p in CI_VALUES.glob("*.yaml"))])
def test_default_and_ci_values_pass(name: str) -> None:
    values = load_yaml(CHART / "values.yaml")
    if name:
        values = merged(values, load_yaml(CI_VALUES / name))
    jsonschema.Draft7Validator(SCHEMA).validate(values)


def test_schema_describes_every_default_value() -> None:
    """Every key of values.yaml is in the schema (so a typo in values.yaml cannot pass unnoticed)."""

    def walk(values: dict[str, Any], schema: dict[str, Any], path: str) -> None:
        props = schema.get("properties", {})
        for key, value in values.items():
            assert key in props, f"{path}{key} is not in values.schema.json"
            if isinstance(value, dict) and props[key].get("additionalProperties") is False:
                walk(value, props[key], f"{path}{key}.")

    walk(load_yaml(CHART / "values.yaml"), SCHEMA, "")


BAD_VALUES: dict[str, dict[str, Any]] = {
    "replica count as text": {"replicaCount": "two"},
    "zero replicas": {"replicaCount": 0},
    "unknown top-level key": {"replicas": 2},
    "unknown nested key": {"image": {"name": "x"}},
    "log level outside the enum": {"operator": {"logLevel": "VERBOSE"}},
    "not a region": {"aws": {"region": "Virginia"}},
    "not a role ARN": {"serviceAccount": {"roleArn": "my-role"}},
    "not a namespace name": {"watchNamespaces": ["Team_A"]},
    "duplicate namespaces": {"watchNamespaces": ["a", "a"]},
    "a DSN the operator refuses": {"database": {"url": "mysql://u:p@h/db"}},
    "a port out of range": {"ports": {"metrics": 70000}},
    "interval under the operator's minimum": {"operator": {"intervals": {"priceSeconds": 5}}},
    "service type outside the enum": {"agentApi": {"service": {"type": "ExternalName"}}},
    "scrape interval not a duration": {"metrics": {"serviceMonitor": {"interval": "often"}}},
}
# helm itself runs a few of them (its validator is the one that matters at install time).
HELM_CASES = [
    "replica count as text",
    "unknown top-level key",
    "unknown nested key",
    "a DSN the operator refuses",
]


@pytest.mark.parametrize("override", list(BAD_VALUES.values()), ids=list(BAD_VALUES))
def test_schema_refuses_bad_values(override: dict[str, Any]) -> None:
    values = merged(load_yaml(CHART / "values.yaml"), override)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(SCHEMA).validate(values)


@pytest.mark.parametrize("case", HELM_CASES)
def test_helm_refuses_bad_values(tools: Tools, tmp_path: Path, case: str) -> None:
    values_file = tmp_path / "bad-values.yaml"
    values_file.write_text(yaml.safe_dump(BAD_VALUES[case]))
    proc = tools.run("helm", "template", "spot", str(CHART), "-f", str(values_file), check=False)
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr


BAD_COMBINATIONS = {
    "both an existing Secret and a DSN": (
        ["--set", "database.existingSecret=db", "--set", "database.url=postgresql://u:p@h/db"],
        "either database.existingSecret or database.url",
    ),
    "two replicas without leader election": (["--set", "peering.enabled=false"], "replicaCount to 1"),
    "an existing service account without a name": (
        ["--set", "serviceAccount.create=false"],
        "serviceAccount.name is required",
    ),
}


@pytest.mark.parametrize(("args", "message"), list(BAD_COMBINATIONS.values()), ids=list(BAD_COMBINATIONS))
def test_helm_refuses_bad_combinations(tools: Tools, args: list[str], message: str) -> None:
    proc = tools.run("helm", "template", "spot", str(CHART), *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def field_bounds(name: str) -> tuple[float, float]:
    lo = hi = None
    for meta in Settings.model_fields[name].metadata:
        if isinstance(meta, Ge):
            lo = meta.ge
        if isinstance(meta, Le):
            hi = meta.le
    assert lo is not None, name
    assert hi is not None, name
    return float(lo), float(hi)  # type: ignore[arg-type]


SETTING_OF = {
    ("operator", "intervals", "observeSeconds"): "observe_interval_seconds",
    ("operator", "intervals", "priceSeconds"): "price_interval_seconds",
    ("operator", "intervals", "decisionSeconds"): "decision_interval_seconds",
    ("operator", "intervals", "reconcileSeconds"): "reconcile_interval_seconds",
    ("operator", "intervals", "cleanSeconds"): "clean_interval_seconds",
    ("operator", "retention", "rawDays"): "raw_retention_days",
    ("operator", "retention", "cleanDays"): "clean_retention_days",
    ("ports", "health"): "health_port",
    ("ports", "metrics"): "metrics_port",
    ("ports", "agentApi"): "agent_api_port",
}


def schema_at(path: tuple[str, ...]) -> dict[str, Any]:
    node = SCHEMA
    for key in path:
        node = node["properties"][key]
    return dict(node)


@pytest.mark.parametrize("path", list(SETTING_OF), ids=[".".join(p) for p in SETTING_OF])
def test_schema_bounds_are_the_operator_bounds(path: tuple[str, ...]) -> None:
    node = schema_at(path)
    assert (node["minimum"], node["maximum"]) == field_bounds(SETTING_OF[path])


def test_schema_enums_are_the_operator_enums() -> None:
    for path, field in ((("operator", "logLevel"), "log_level"), (("operator", "logFormat"), "log_format")):
        allowed = typing.get_args(Settings.model_fields[field].annotation)
        assert set(schema_at(path)["enum"]) == set(allowed)


@pytest.mark.parametrize("path", list(SETTING_OF), ids=[".".join(p) for p in SETTING_OF])
def test_chart_defaults_are_the_operator_defaults(path: tuple[str, ...]) -> None:
    value: Any = load_yaml(CHART / "values.yaml")
    for key in path:
        value = value[key]
    assert value == Settings.model_fields[SETTING_OF[path]].default
