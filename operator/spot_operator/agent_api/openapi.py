"""The agent API's OpenAPI 3.1 document, generated from the same pydantic models that validate requests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from spot_agent.protocol import (
    API_PREFIX,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    NAMESPACE_PATTERN,
    ErrorBody,
    HealthBody,
    HeartbeatAck,
    HeartbeatReport,
    HookAck,
    HookReport,
    NoticeAck,
    NoticeReport,
)
from spot_operator import __version__

REQUESTS: tuple[type[BaseModel], ...] = (HeartbeatReport, NoticeReport, HookReport)
RESPONSES: tuple[type[BaseModel], ...] = (HeartbeatAck, NoticeAck, HookAck, ErrorBody, HealthBody)
REF = "#/components/schemas/{model}"

# Endpoint segment -> (request model, success status, response model, summary).
ENDPOINTS: dict[str, tuple[type[BaseModel], int, type[BaseModel], str]] = {
    "heartbeat": (
        HeartbeatReport,
        200,
        HeartbeatAck,
        "Report that the agent is alive, with health and sync progress.",
    ),
    "notices": (NoticeReport, 202, NoticeAck, "Report an interruption, rebalance or maintenance notice."),
    "hooks": (HookReport, 202, HookAck, "Report the result of a user hook (the pre-stop drain)."),
}

_ERRORS = {
    "400": "The body is not JSON.",
    "401": "No token, a malformed Authorization header, or a token that is not valid.",
    "403": "The token belongs to another agent.",
    "404": "The instance is not one of this agent's instances, or the agent is unknown.",
    "413": "The body is larger than the limit.",
    "415": "The body is not application/json.",
    "422": "The body does not match the schema; each invalid field is named.",
    "500": "The operator failed to handle the report; retry.",
}

# The interruption-only rule of NoticeReport (a model validator) spelled out for schema readers.
_NOTICE_ACTION_RULE = {
    "if": {"properties": {"kind": {"const": "interruption"}}, "required": ["kind"]},
    "then": {"required": ["action"], "properties": {"action": {"type": "string"}}},
    "else": {"properties": {"action": {"type": "null"}}},
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _schemas() -> dict[str, Any]:
    pairs = [(m, "validation") for m in REQUESTS] + [(m, "serialization") for m in RESPONSES]
    _, defs = models_json_schema(pairs, ref_template=REF)  # type: ignore[arg-type]
    schemas: dict[str, Any] = defs.get("$defs", {})
    schemas[NoticeReport.__name__].update(_NOTICE_ACTION_RULE)
    return schemas


def _report_operation(segment: str) -> dict[str, Any]:
    request, status, response, summary = ENDPOINTS[segment]
    responses: dict[str, Any] = {str(status): _json(response, "Accepted." if status == 202 else "Recorded.")}
    for code, text in _ERRORS.items():
        responses[code] = _json(ErrorBody, text)
    if segment == "notices":
        responses["503"] = _json(
            ErrorBody,
            "The notice is being acted on, but the operator could not yet record it where a restart would "
            "find it (the SpotAgent's status); send it again (Retry-After). It is a duplicate then.",
        )
    return {
        "post": {
            "operationId": f"report{segment.capitalize()}",
            "summary": summary,
            "security": [{"agentToken": []}],
            "parameters": [
                {
                    "name": "namespace",
                    "in": "path",
                    "required": True,
                    "description": "The SpotAgent's namespace.",
                    "schema": {"type": "string", "pattern": NAMESPACE_PATTERN, "maxLength": 63},
                },
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "description": "The SpotAgent's name.",
                    "schema": {"type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_MAX_LENGTH},
                },
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request)}}},
            "responses": responses,
        }
    }


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        f"{API_PREFIX}/namespaces/{{namespace}}/agents/{{name}}/{segment}": _report_operation(segment)
        for segment in ENDPOINTS
    }
    paths["/healthz"] = {
        "get": {
            "operationId": "health",
            "summary": "Liveness of the agent API.",
            "security": [],
            "responses": {"200": _json(HealthBody, "Serving.")},
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document.",
            "security": [],
            "responses": {
                "200": {"description": "The OpenAPI 3.1 document.", "content": {"application/json": {}}}
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "spot-optimizer agent API",
            "version": __version__,
            "description": "Where each instance's spot-agent reports heartbeats, notices and hook results. "
            "Every report carries an idempotency key; the same report twice is acted on once.",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "agentToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The agent's token, from the Secret the operator made for its SpotAgent.",
                }
            },
        },
    }
