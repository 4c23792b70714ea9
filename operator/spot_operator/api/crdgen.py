"""Generate the CustomResourceDefinitions in ``crds/`` from the pydantic models.

``python -m spot_operator.api.crdgen [--check] [OUTDIR]`` writes one YAML file per kind, or with ``--check``
exits 1 when the files on disk differ from what the models generate.

Kubernetes wants a *structural* schema: every node typed, no ``$ref``, nullability as ``nullable: true``
instead of ``anyOf [X, null]``, and no ``additionalProperties: false`` next to ``properties`` (pruning does
that job). Rules the schema cannot say are CEL ``x-kubernetes-validations`` declared on the models.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from spot_operator.api.common import GROUP, VERSION
from spot_operator.api.replica import ReplicaSpec, ReplicaStatus
from spot_operator.api.spotagent import SpotAgentSpec, SpotAgentStatus
from spot_operator.api.switchrequest import SwitchRequestSpec, SwitchRequestStatus

JsonSchema = dict[str, Any]


@dataclass(frozen=True)
class CrdInfo:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    description: str
    printer_columns: tuple[dict[str, Any], ...]

    @property
    def name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def filename(self) -> str:
        return f"{GROUP}_{self.plural}.yaml"


def _column(name: str, type_: str, path: str, description: str, priority: int = 0) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path, "description": description}
    if priority:
        col["priority"] = priority
    return col


AGE = _column("Age", "date", ".metadata.creationTimestamp", "Time since creation.")

CRDS: tuple[CrdInfo, ...] = (
    CrdInfo(
        kind="SpotAgent",
        plural="spotagents",
        short_names=("sag", "spotagent"),
        spec_model=SpotAgentSpec,
        status_model=SpotAgentStatus,
        description="One workload kept on the cheapest safe EC2 capacity, with exactly one primary instance.",
        printer_columns=(
            _column("Mode", "string", ".spec.mode", "auto-switch, manual-replica or off."),
            _column("Primary", "string", ".status.primary.instanceId", "The primary instance."),
            _column("Pool", "string", ".status.primary.pool", "The primary's pool."),
            _column("Price", "number", ".status.primary.hourlyPrice", "Hourly price of the primary (USD)."),
            _column("Savings", "number", ".status.savings.percent", "Saving against on-demand (%)."),
            _column("Phase", "string", ".status.phase", "Lifecycle phase."),
            AGE,
        ),
    ),
    CrdInfo(
        kind="Replica",
        plural="replicas",
        short_names=("srep",),
        spec_model=ReplicaSpec,
        status_model=ReplicaStatus,
        description="A standby instance for a SpotAgent, ready to take over as its primary.",
        printer_columns=(
            _column("Agent", "string", ".spec.agentRef.name", "The SpotAgent it stands by for."),
            _column("Instance", "string", ".status.instanceId", "The standby instance."),
            _column("Pool", "string", ".status.pool", "Its pool."),
            _column("Reason", "string", ".spec.reason", "Why it exists."),
            _column("Phase", "string", ".status.phase", "Launching, Syncing, Ready, Promoted, Terminated."),
            AGE,
        ),
    ),
    CrdInfo(
        kind="SwitchRequest",
        plural="switchrequests",
        short_names=("swr",),
        spec_model=SwitchRequestSpec,
        status_model=SwitchRequestStatus,
        description="One move of a SpotAgent's primary to another pool, to on-demand, or onto a replica.",
        printer_columns=(
            _column("Agent", "string", ".spec.agentRef.name", "The SpotAgent whose primary moves."),
            _column("Target", "string", ".spec.target.kind", "pool, on-demand, cheapest or replica."),
            _column("To", "string", ".status.newPool", "The pool it moved to."),
            _column("Reason", "string", ".spec.reason", "manual, decision, emergency or drift."),
            _column("Phase", "string", ".status.phase", "Where the switch is."),
            _column("Downtime", "number", ".status.timings.downtimeSeconds", "Seconds without a server."),
            AGE,
        ),
    ),
)

_DROP_KEYS = {"title", "$defs", "additionalProperties", "propertyNames"}
# Keywords a Kubernetes structural schema accepts (apiextensions.k8s.io/v1 JSONSchemaProps).
ALLOWED_KEYS = {
    "description",
    "type",
    "format",
    "default",
    "maximum",
    "minimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "properties",
    "additionalProperties",
    "nullable",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-map-type",
    "x-kubernetes-list-map-keys",
}


def structural(schema: JsonSchema, defs: dict[str, JsonSchema] | None = None) -> JsonSchema:
    """Turn a pydantic JSON schema into a Kubernetes structural schema."""
    defs = schema.get("$defs", {}) if defs is None else defs
    node = dict(schema)

    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "default"}}
        if "default" in node:
            merged["default"] = node["default"]
        return structural(merged, defs)

    if "patternProperties" in node:
        # Maps with constrained keys: Kubernetes has no patternProperties; keys are checked by a CEL rule.
        (value_schema,) = node.pop("patternProperties").values()
        node["additionalProperties"] = value_schema

    nullable = False
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        nullable = len(options) == 1
        if len(options) != 1:
            raise ValueError(f"unions are not structural: {schema}")
        inner = structural(options[0], defs)
        outer = {k: v for k, v in node.items() if k not in _DROP_KEYS}
        node = {**inner, **outer}
        if node.get("default", 0) is None:
            del node["default"]

    out: JsonSchema = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        if key == "properties":
            out["properties"] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out["items"] = structural(value, defs)
        else:
            out[key] = value
    additional = node.get("additionalProperties")
    if isinstance(additional, dict):
        out["additionalProperties"] = structural(additional, defs)
    if nullable:
        out["nullable"] = True
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    unknown = set(out) - ALLOWED_KEYS
    if unknown:
        raise ValueError(f"keywords Kubernetes does not accept in a CRD schema: {sorted(unknown)}")
    return dict(sorted(out.items()))


def model_schema(model: type[BaseModel]) -> JsonSchema:
    return structural(model.model_json_schema(by_alias=True, mode="validation"))


def crd_for(info: CrdInfo) -> dict[str, Any]:
    spec_schema = model_schema(info.spec_model)
    status_schema = model_schema(info.status_model)
    status_schema["description"] = "Observed state, written by the operator."
    root: JsonSchema = {
        "type": "object",
        "description": info.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "spotoptimizer.io/v1alpha1"},
            "kind": {"type": "string", "description": info.kind},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": info.name,
            "labels": {"app.kubernetes.io/part-of": "spot-optimizer"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.kind.lower(),
                "shortNames": list(info.short_names),
                "categories": ["spot-optimizer"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(info.printer_columns),
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


HEADER = "# Generated by `python -m spot_operator.api.crdgen` from spot_operator/api. Do not edit.\n"


def render(info: CrdInfo) -> str:
    body: str = yaml.safe_dump(crd_for(info), sort_keys=False, width=100)
    return HEADER + body


def crd_by_kind(kind: str) -> dict[str, Any]:
    for info in CRDS:
        if info.kind == kind:
            return crd_for(info)
    raise KeyError(kind)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("outdir", nargs="?", default="crds", type=Path)
    parser.add_argument("--check", action="store_true", help="fail when the files differ from the models")
    args = parser.parse_args(argv)
    stale = []
    for info in CRDS:
        path: Path = args.outdir / info.filename
        text = render(info)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("out of date (run python -m spot_operator.api.crdgen):", *stale, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
