"""Validate a manifest the way the API server would: the CRD's openAPIV3Schema, then its CEL rules.

Used by ``spotctl validate`` (GitOps pre-commit checks) and by the tests that keep the examples honest.
CEL rules are evaluated with cel-python; transition rules (those that mention ``oldSelf``) need the old
object and are checked only when one is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema

from spot_operator.api.common import API_VERSION
from spot_operator.api.crdgen import CRDS, crd_for

JsonSchema = dict[str, Any]


@dataclass(frozen=True)
class FieldError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _to_jsonschema(node: Any) -> Any:
    """OpenAPI v3 ``nullable`` becomes a JSON Schema type union; everything else passes through."""
    if isinstance(node, dict):
        out = {k: _to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            # kubectl's default strict field validation rejects unknown fields instead of pruning them.
            out["additionalProperties"] = False
        if out.pop("nullable", False) and "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        return out
    if isinstance(node, list):
        return [_to_jsonschema(v) for v in node]
    return node


@cache
def _schema(kind: str) -> JsonSchema:
    for info in CRDS:
        if info.kind == kind:
            schema: JsonSchema = crd_for(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(kind)


def _path(parts: Iterator[Any] | list[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".") or "<root>"


def _schema_errors(kind: str, doc: dict[str, Any]) -> list[FieldError]:
    validator = jsonschema.Draft202012Validator(_to_jsonschema(_schema(kind)))
    errors = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        path = list(err.absolute_path)
        if err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else "?"
            path = [*path, missing]
            message = "Required value"
        elif err.validator == "enum":
            message = f"Unsupported value {err.instance!r}: supported values: {err.validator_value}"
        else:
            message = err.message
        errors.append(FieldError(_path(path), message))
    return errors


def _cel_rules(schema: JsonSchema, path: list[Any]) -> Iterator[tuple[list[Any], JsonSchema, dict[str, Any]]]:
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, schema, rule
    for name, sub in schema.get("properties", {}).items():
        yield from _cel_rules(sub, [*path, name])
    if "items" in schema:
        yield from _cel_rules(schema["items"], [*path, "*"])


def _values_at(doc: Any, path: list[Any]) -> Iterator[tuple[list[Any], Any]]:
    if not path:
        yield [], doc
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(doc, list):
            for i, item in enumerate(doc):
                for sub, value in _values_at(item, rest):
                    yield [i, *sub], value
    elif isinstance(doc, dict) and head in doc:
        for sub, value in _values_at(doc[head], rest):
            yield [head, *sub], value


@cache
def _program(rule: str) -> Any:
    import celpy  # cel-python; imported here because it is slow to import

    env = celpy.Environment()
    return env.program(env.compile(rule))


def _cel_errors(kind: str, doc: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    import celpy
    from celpy.adapter import json_to_cel

    errors = []
    for path, _schema_node, rule in _cel_rules(_schema(kind), []):
        transition = "oldSelf" in rule["rule"]
        if transition and old is None:
            continue
        program = _program(rule["rule"])
        for concrete, value in _values_at(doc, path):
            activation = {"self": json_to_cel(value)}
            if transition:
                olds = {tuple(p): v for p, v in _values_at(old, path)}
                if tuple(concrete) not in olds:
                    continue
                activation["oldSelf"] = json_to_cel(olds[tuple(concrete)])
            result = program.evaluate(activation)
            if not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
                field = _path(concrete) + rule.get("fieldPath", "")
                errors.append(FieldError(field, rule.get("message", f"failed rule: {rule['rule']}")))
    return errors


def validate_manifest(doc: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """All problems the API server would report for ``doc`` (an update of ``old`` when given)."""
    if doc.get("apiVersion") != API_VERSION:
        return [FieldError("apiVersion", f"must be {API_VERSION}, got {doc.get('apiVersion')!r}")]
    kind = doc.get("kind")
    if kind not in {info.kind for info in CRDS}:
        return [FieldError("kind", f"unknown kind {kind!r} in {API_VERSION}")]
    errors = _schema_errors(str(kind), doc)
    if errors:  # the API server also stops before CEL when the schema fails
        return errors
    return _cel_errors(str(kind), doc, old)
