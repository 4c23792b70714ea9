"""Every error the agent API answers is a JSON ErrorBody: a stable code and a message naming the problem."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from pydantic import ValidationError

from spot_agent.protocol import ErrorBody, FieldError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Codes for errors aiohttp raises itself (no route, wrong method, body over the limit).
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: list[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []
        self.headers = dict(headers or {})


def error_response(
    status: int,
    code: str,
    message: str,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = ErrorBody(error=code, message=message, errors=errors or [])
    return web.Response(
        status=status,
        body=body.model_dump_json(by_alias=True).encode(),
        content_type="application/json",
        headers=headers,
    )


def field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) if loc else "body"


def validation_error(exc: ValidationError) -> ApiError:
    """400 when the body is not JSON at all; else 422 naming each invalid field."""
    errors = exc.errors(include_url=False)
    invalid_json = [e for e in errors if e["type"] == "json_invalid"]
    if invalid_json:
        detail = invalid_json[0].get("ctx", {}).get("error") or invalid_json[0]["msg"]
        return ApiError(400, "invalid_json", f"the body is not valid JSON: {detail}")
    fields = [FieldError(field=field_name(e["loc"]), message=e["msg"]) for e in errors]
    summary = "; ".join(f"{f.field}: {f.message}" for f in fields[:5])
    more = f" (and {len(fields) - 5} more)" if len(fields) > 5 else ""
    return ApiError(422, "validation_failed", f"invalid body: {summary}{more}", fields)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.errors, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")}
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if exc.status == 404:
            message = f"no such endpoint: {request.method} {request.path}"
        elif exc.status == 405:
            message = (
                f"{request.method} is not allowed on {request.path}; allowed: {exc.headers.get('Allow', '')}"
            )
        return error_response(exc.status, _CODES.get(exc.status, "error"), message, headers=headers)
    except Exception:
        log.exception("agent API: unexpected error", extra={"path": request.path, "method": request.method})
        return error_response(
            500, "internal_error", "the operator failed to handle the request; it was logged"
        )
