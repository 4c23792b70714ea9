"""Schemathesis against the served /openapi.json: generated valid and invalid requests never get a 5xx,
and every answer matches the document (status, media type, body schema)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.agent_api.harness import AGENT, INSTANCE, Api, api_in_thread

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 20  # per operation and combination; the machine is small


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Api, Any]]:
    with api_in_thread() as api:
        yield api, schemathesis.openapi.from_url(f"{api.url}/openapi.json")


def operations(schema: Any) -> list[Any]:
    ops = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in ops} >= {
        "POST /v1/namespaces/{namespace}/agents/{name}/heartbeat",
        "POST /v1/namespaces/{namespace}/agents/{name}/notices",
        "POST /v1/namespaces/{namespace}/agents/{name}/hooks",
        "GET /healthz",
    }
    return ops


def run(api: Api, operation: Any, mode: GenerationMode, authorised: bool) -> list[int]:
    seen: list[int] = []
    fixed: dict[str, Any] = {}
    if authorised and operation.method.upper() == "POST":
        namespace, name = AGENT.split("/")
        fixed = {
            "path_parameters": {"namespace": namespace, "name": name},
            "headers": {"Authorization": f"Bearer {api.token}"},
        }

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    def probe(case: Any) -> None:
        if authorised and mode is GenerationMode.POSITIVE and isinstance(case.body, dict):
            case.body["instanceId"] = INSTANCE  # reach the sink, not just the 404
        response = case.call(base_url=api.url)
        seen.append(response.status_code)
        case.validate_response(response, checks=CHECKS)

    probe()
    return seen


@pytest.mark.parametrize(
    ("mode", "authorised"),
    [
        (GenerationMode.POSITIVE, False),  # generated paths and tokens: the auth and routing answers
        (GenerationMode.POSITIVE, True),  # the agent's path and token: valid reports reach the sink
        (GenerationMode.NEGATIVE, True),  # the agent's path and token: invalid bodies get 4xx
    ],
    ids=["valid-any-token", "valid-agent-token", "invalid-agent-token"],
)
def test_no_server_errors_and_answers_match_the_document(
    served: tuple[Api, Any], mode: GenerationMode, authorised: bool
) -> None:
    api, schema = served
    statuses: list[int] = []
    for operation in operations(schema):
        if mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # no parameters and no body: nothing to make invalid
        statuses += run(api, operation, mode, authorised)
    assert statuses
    assert max(statuses) < 500
    if authorised and mode is GenerationMode.POSITIVE:
        assert {200, 202} <= set(statuses)  # valid reports got through to the sink
    if authorised and mode is GenerationMode.NEGATIVE:
        assert 422 in statuses or 400 in statuses
