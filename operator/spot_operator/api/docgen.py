"""Generate ``docs/reference.md``: the custom resources and the Prometheus metrics, from the code.

``python -m spot_operator.api.docgen [--check] [PATH]`` writes the reference, or with ``--check`` exits 1
when the file on disk differs from what the models and metrics generate.

The resources are walked in the same structural schema the CRDs are made of (``crdgen.model_schema``), so
the reference says what ``kubectl explain`` and the API server say. The metrics are the
prometheus_client objects defined at module level in ``spot_operator.metrics`` (and the store buffer's).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from spot_operator import metrics
from spot_operator.api.common import GROUP, VERSION
from spot_operator.api.crdgen import CRDS, CrdInfo, JsonSchema, model_schema
from spot_operator.settings import PREFIX, Settings
from spot_operator.storage import buffer

DEFAULT_PATH = Path("docs/reference.md")
COMMAND = "python -m spot_operator.api.docgen docs/reference.md"
# Modules whose module-level metric objects are exported through ``metrics.REGISTRY``.
METRIC_MODULES: tuple[ModuleType, ...] = (metrics, buffer)
# What the exposition adds to a metric's name, by type.
_SUFFIX = {"counter": "_total", "info": "_info"}


@dataclass(frozen=True)
class FieldDoc:
    path: str
    type: str
    default: str
    constraints: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class MetricDoc:
    name: str
    type: str
    labels: tuple[str, ...]
    help: str


# ------------------------------------------------------------------------------------------ resources


def _code(value: str) -> str:
    return f"`{value}`"


def _json(value: Any) -> str:
    return value if isinstance(value, str) and value else json.dumps(value)


def type_of(schema: JsonSchema) -> str:
    """A short Go-like name of a schema node's type: ``string``, ``[]string``, ``map[string]integer``."""
    kind = schema.get("type", "any")
    if kind == "array":
        return "[]" + type_of(schema.get("items", {}))
    if kind == "object":
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            return "map[string]" + type_of(additional)
        return "object"
    fmt = schema.get("format")
    return f"{kind} ({fmt})" if fmt else str(kind)


def constraints_of(schema: JsonSchema, required: bool) -> tuple[str, ...]:
    """The validation a node carries, in words: required, enum, bounds, pattern, CEL rules."""
    out: list[str] = []
    if required:
        out.append("required")
    if schema.get("nullable"):
        out.append("nullable")
    if "enum" in schema:
        out.append("one of " + ", ".join(_code(_json(v)) for v in schema["enum"]))
    for key, label in (
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("minProperties", "min entries"),
        ("maxProperties", "max entries"),
        ("multipleOf", "multiple of"),
    ):
        if key in schema:
            out.append(f"{label} {schema[key]}")
    if "pattern" in schema:
        out.append("pattern " + _code(schema["pattern"]))
    if schema.get("x-kubernetes-list-type") == "set":
        out.append("unique items")
    items = schema.get("items")
    if isinstance(items, dict) and items.get("type") != "object":
        out += [f"items: {c}" for c in constraints_of(items, required=False)]
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict) and additional.get("type") != "object":
        out += [f"values: {c}" for c in constraints_of(additional, required=False)]
    out += [f"rule: {rule['message']}" for rule in schema.get("x-kubernetes-validations", ())]
    return tuple(out)


def _element(schema: JsonSchema) -> tuple[str, JsonSchema] | None:
    """The object a list or map holds, with the path suffix that names one of them."""
    items = schema.get("items")
    if isinstance(items, dict) and "properties" in items:
        return "[]", items
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict) and "properties" in additional:
        return ".*", additional
    return None


def walk(schema: JsonSchema, prefix: str = "") -> Iterator[FieldDoc]:
    """Every field below an object node, depth first in declaration order, with its dotted JSON path."""
    required = set(schema.get("required", ()))
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        element = _element(sub)
        description = sub.get("description") or (element[1].get("description", "") if element else "")
        yield FieldDoc(
            path=path,
            type=type_of(sub),
            default=_json(sub["default"]) if "default" in sub else "",
            constraints=constraints_of(sub, name in required),
            description=description,
        )
        if "properties" in sub:
            yield from walk(sub, path + ".")
        elif element:
            suffix, inner = element
            yield from walk(inner, path + suffix + ".")


def _row(*cells: str) -> str:
    """One Markdown table row: each cell on one line, with its pipes escaped."""
    return "| " + " | ".join(" ".join(cell.split()).replace("|", "\\|") for cell in cells) + " |"


def field_table(schema: JsonSchema) -> list[str]:
    lines = ["| Field | Type | Default | Constraints | Description |", "|---|---|---|---|---|"]
    for doc in walk(schema):
        default = _code(doc.default) if doc.default else ""
        constraints = "; ".join(doc.constraints)
        lines.append(_row(_code(doc.path), _code(doc.type), default, constraints, doc.description))
    return lines


def resource_section(info: CrdInfo) -> list[str]:
    lines = [
        f"## {info.kind}",
        "",
        info.description,
        "",
        f"`apiVersion: {GROUP}/{VERSION}`, `kind: {info.kind}`, namespaced; "
        f"plural `{info.plural}`, short names {', '.join(_code(n) for n in info.short_names)}.",
    ]
    for part, model in (("spec", info.spec_model), ("status", info.status_model)):
        schema = model_schema(model)
        lines += ["", f"### {info.kind} {part}", ""]
        if schema.get("description"):
            lines += [" ".join(schema["description"].split()), ""]
        rules = schema.get("x-kubernetes-validations", ())
        if rules:
            lines += [f"- Rule on the whole {part}: {rule['message']} (`{rule['rule']}`)" for rule in rules]
            lines.append("")
        lines += field_table(schema)
    return lines


# -------------------------------------------------------------------------------------------- metrics


def metric_docs(modules: tuple[ModuleType, ...] = METRIC_MODULES) -> list[MetricDoc]:
    """The metric objects defined at module level, in definition order, with their exposed names."""
    docs: list[MetricDoc] = []
    for module in modules:
        for value in vars(module).values():
            if not isinstance(value, MetricWrapperBase):
                continue
            kind = str(value._type)
            docs.append(
                MetricDoc(
                    name=value._name + _SUFFIX.get(kind, ""),
                    type=kind,
                    labels=tuple(value._labelnames),
                    help=value._documentation,
                )
            )
    return docs


def metrics_section() -> list[str]:
    port = Settings.model_fields["metrics_port"].default
    lines = [
        "## Metrics",
        "",
        f"Served in the Prometheus text format on `/metrics`, port {port} (`{PREFIX}METRICS_PORT`).",
        "Histograms also expose `<name>_bucket` (label `le`), `<name>_sum` and `<name>_count`.",
        "",
        "| Name | Type | Labels | Help |",
        "|---|---|---|---|",
    ]
    for doc in metric_docs():
        labels = ", ".join(_code(label) for label in doc.labels)
        lines.append(_row(_code(doc.name), doc.type, labels, doc.help))
    return lines


# ----------------------------------------------------------------------------------------------- file


def render() -> str:
    lines = [
        f"<!-- Generated by `{COMMAND}` from spot_operator/api and spot_operator/metrics.py."
        " Do not edit. -->",
        "",
        "# Reference",
        "",
        f"The custom resources of `{GROUP}/{VERSION}` and the Prometheus metrics of the operator. Field",
        "paths are relative to `spec` or `status`; `[]` marks the elements of a list, `.*` the values of a",
        "map. `kubectl explain spotagent.spec` shows the same descriptions from the cluster.",
        "",
        *[f"- [{info.kind}](#{info.kind.lower()})" for info in CRDS],
        "- [Metrics](#metrics)",
    ]
    for info in CRDS:
        lines += ["", *resource_section(info)]
    lines += ["", *metrics_section()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", nargs="?", default=DEFAULT_PATH, type=Path)
    parser.add_argument("--check", action="store_true", help="fail when the file differs from the code")
    args = parser.parse_args(argv)
    path: Path = args.path
    text = render()
    if args.check:
        if not path.exists():
            print(f"{path} is missing: run {COMMAND}", file=sys.stderr)
            return 1
        if path.read_text() != text:
            print(f"{path} is out of date with the models and metrics: run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
