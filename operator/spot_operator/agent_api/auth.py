"""Bearer-token authentication: 401 without a valid token, 403 when it is another agent's."""

from __future__ import annotations

from aiohttp import web

from spot_operator.agent_api.errors import ApiError
from spot_operator.agent_api.tokens import TokenStore

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="spot-optimizer agent API"'}


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if header is None:
        raise ApiError(
            401, "missing_token", "an Authorization: Bearer <token> header is required", headers=CHALLENGE
        )
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(
            401,
            "malformed_authorization",
            "the Authorization header must be 'Bearer <token>'",
            headers=CHALLENGE,
        )
    return value.strip()


def authorize(request: web.Request, tokens: TokenStore, agent_key: str) -> None:
    """The token must be valid and be the token of ``agent_key`` (the agent named in the path)."""
    owner = tokens.authenticate(bearer_token(request))
    if owner is None:
        raise ApiError(
            401,
            "invalid_token",
            "the token is not valid: unknown, revoked, or replaced by a newer one past its grace period",
            headers={"WWW-Authenticate": 'Bearer realm="spot-optimizer agent API", error="invalid_token"'},
        )
    if owner != agent_key:
        raise ApiError(403, "forbidden", f"this token may not report for agent {agent_key}")
