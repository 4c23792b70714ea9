"""The agent API: an aiohttp application served by the operator on its own event loop (with kopf).

POST /v1/namespaces/{namespace}/agents/{name}/heartbeat | notices | hooks, GET /openapi.json, GET /healthz.

Each report goes through the same steps, cheapest first: the token (401/403), the media type (415),
the body size (413), JSON (400), the schema (422), the instance (404), then the sink. A notice is
answered 202 as soon as the sink recorded it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from spot_agent.protocol import (
    API_PREFIX,
    HealthBody,
    HeartbeatAck,
    HeartbeatReport,
    HookAck,
    HookReport,
    NoticeAck,
    NoticeReport,
)
from spot_operator import metrics
from spot_operator.agent_api.auth import authorize
from spot_operator.agent_api.errors import ApiError, error_middleware, validation_error
from spot_operator.agent_api.openapi import openapi_document
from spot_operator.agent_api.sink import AgentSink
from spot_operator.agent_api.tokens import TokenStore

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 64 * 1024  # reports are a few KiB at most (payload 16 KiB, output tails 2 x 4 KiB)

TOKENS = web.AppKey("tokens", TokenStore)
SINK = web.AppKey("sink", AgentSink)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
OPENAPI = web.AppKey("openapi", bytes)

M = TypeVar("M", bound=BaseModel)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=model.model_dump_json(by_alias=True).encode(), content_type="application/json"
    )


def agent_key(request: web.Request) -> str:
    return f"{request.match_info['namespace']}/{request.match_info['name']}"


async def read_report(request: web.Request, model: type[M]) -> M:
    if request.content_type != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the body must be application/json, not {request.content_type or 'unspecified'}",
        )
    body = await request.read()  # HTTPRequestEntityTooLarge (413) past client_max_size
    if not body.strip():
        raise ApiError(400, "invalid_json", "the body is empty; a JSON object is required")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise validation_error(exc) from None


async def _authorized_report(request: web.Request, model: type[M]) -> tuple[str, M]:
    key = agent_key(request)
    authorize(request, request.app[TOKENS], key)
    report = await read_report(request, model)
    instance_id = getattr(report, "instance_id")  # noqa: B009 (every report model has one)
    if not request.app[SINK].instance_known(key, instance_id):
        raise ApiError(
            404, "unknown_instance", f"instance {instance_id} is not one of agent {key}'s instances"
        )
    return key, report


async def post_heartbeat(request: web.Request) -> web.Response:
    key, report = await _authorized_report(request, HeartbeatReport)
    await request.app[SINK].heartbeat(key, report)
    return _json(HeartbeatAck(server_time=request.app[CLOCK]()))


async def post_notice(request: web.Request) -> web.Response:
    key, report = await _authorized_report(request, NoticeReport)
    outcome = await request.app[SINK].notice(key, report)
    duplicate = outcome == "duplicate"
    metrics.NOTICES.labels(report.kind.value, "agent", "true" if duplicate else "false").inc()
    log.log(
        logging.INFO if duplicate else logging.WARNING,
        "notice from agent",
        extra={
            "agent": key,
            "instance_id": report.instance_id,
            "kind": report.kind.value,
            "action": report.action.value if report.action else None,
            "outcome": outcome,
        },
    )
    return _json(NoticeAck(status=outcome, idempotency_key=report.idempotency_key), status=202)


async def post_hook(request: web.Request) -> web.Response:
    key, report = await _authorized_report(request, HookReport)
    await request.app[SINK].hook_result(key, report)
    log.log(
        logging.INFO if report.ok else logging.WARNING,
        "hook result from agent",
        extra={
            "agent": key,
            "instance_id": report.instance_id,
            "hook": report.hook,
            "exit_code": report.exit_code,
            "timed_out": report.timed_out,
        },
    )
    return _json(HookAck(idempotency_key=report.idempotency_key), status=202)


async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


async def get_health(request: web.Request) -> web.Response:
    return _json(HealthBody())


def create_app(
    tokens: TokenStore,
    sink: AgentSink,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    clock: Callable[[], datetime] = utc_now,
) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=max_body_bytes)
    app[TOKENS] = tokens
    app[SINK] = sink
    app[CLOCK] = clock
    app[OPENAPI] = json.dumps(openapi_document()).encode()
    base = f"{API_PREFIX}/namespaces/{{namespace}}/agents/{{name}}"
    app.router.add_post(f"{base}/heartbeat", post_heartbeat)
    app.router.add_post(f"{base}/notices", post_notice)
    app.router.add_post(f"{base}/hooks", post_hook)
    app.router.add_get("/openapi.json", get_openapi)
    app.router.add_get("/healthz", get_health)
    return app
