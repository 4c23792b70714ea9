"""IMDSv2 client on http.client: session token, refresh before expiry, one retry on 401, no IMDSv1.

Instances are launched with tokens required, so a request without a token is never tried: when the
token cannot be had the client says why (the usual cause, a hop limit of 1 in a container, is named).
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "http://169.254.169.254"
TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TOKEN_TTL = 21600  # six hours, the most IMDS grants

INSTANCE_ACTION_PATH = "/latest/meta-data/spot/instance-action"
REBALANCE_PATH = "/latest/meta-data/events/recommendations/rebalance"
SCHEDULED_EVENTS_PATH = "/latest/meta-data/events/maintenance/scheduled"
INSTANCE_ID_PATH = "/latest/meta-data/instance-id"
AVAILABILITY_ZONE_PATH = "/latest/meta-data/placement/availability-zone"
INSTANCE_TYPE_PATH = "/latest/meta-data/instance-type"

HOP_LIMIT_HINT = (
    "IMDSv2 tokens are required and there is no IMDSv1 fallback. If the agent runs in a container or "
    "behind a network hop, the instance's metadata hop limit is the usual cause: raise it with "
    "'aws ec2 modify-instance-metadata-options --instance-id <id> --http-put-response-hop-limit 2'"
)


class ImdsError(Exception):
    """IMDS answered, but not as it should."""


class ImdsUnreachable(ImdsError):
    """No answer from IMDS (connection refused, timed out, reset)."""


class ImdsUnauthorized(ImdsError):
    """401 even with a fresh token."""


@dataclass
class TokenCache:
    """When the session token must be renewed; pure: ``now`` is a monotonic time passed in."""

    token: str | None = None
    expires_at: float = 0.0

    @staticmethod
    def margin(ttl_seconds: float) -> float:
        """Renew this long before expiry: a tenth of the TTL, at most a minute."""
        return min(60.0, ttl_seconds / 10.0)

    def valid(self, now: float) -> str | None:
        """The token, if it is not within its renewal margin of expiry."""
        if self.token is None or now >= self.expires_at:
            return None
        return self.token

    def store(self, token: str, ttl_seconds: float, now: float) -> None:
        self.token = token
        self.expires_at = now + ttl_seconds - self.margin(ttl_seconds)

    def invalidate(self) -> None:
        self.token = None
        self.expires_at = 0.0


@dataclass(frozen=True)
class Identity:
    instance_id: str
    availability_zone: str
    instance_type: str

    @property
    def pool(self) -> str:
        return f"{self.instance_type}.{self.availability_zone}"


@dataclass(frozen=True)
class Observation:
    """One poll of the three notice paths: the raw bodies, None where IMDS answered 404 (no event)."""

    instance_action: str | None
    rebalance: str | None
    scheduled_events: str | None


class ImdsClient:
    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        token_ttl_seconds: int = MAX_TOKEN_TTL,
        timeout_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"IMDS endpoint must be an http:// URL, got {endpoint!r}")
        if not 1 <= token_ttl_seconds <= MAX_TOKEN_TTL:
            raise ValueError(f"token TTL must be 1..{MAX_TOKEN_TTL} seconds, got {token_ttl_seconds}")
        self.endpoint = endpoint.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or 80
        self.token_ttl_seconds = token_ttl_seconds
        self.timeout_seconds = timeout_seconds
        self._clock = clock
        self._cache = TokenCache()
        self._lock = threading.Lock()
        self.tokens_fetched = 0

    # ------------------------------------------------------------------------------------ transport

    def _request(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_seconds)
        try:
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            body = response.read().decode("utf-8", errors="replace")
            return response.status, {k.lower(): v for k, v in response.getheaders()}, body
        except (OSError, http.client.HTTPException) as exc:
            reason = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
            raise ImdsUnreachable(
                f"IMDS at {self.endpoint} unreachable on {method} {path} ({reason}). " + HOP_LIMIT_HINT
            ) from exc
        finally:
            conn.close()

    # ---------------------------------------------------------------------------------------- token

    def _fetch_token(self) -> str:
        status, headers, body = self._request("PUT", TOKEN_PATH, {TTL_HEADER: str(self.token_ttl_seconds)})
        if status == 403:
            raise ImdsError(
                f"IMDS refused a session token (403): the metadata service is disabled on this "
                f"instance (HttpEndpoint=disabled) or the request passed a proxy. {HOP_LIMIT_HINT}"
            )
        if status != 200 or not body.strip():
            raise ImdsError(f"IMDS token request failed: PUT {TOKEN_PATH} answered {status}")
        try:
            ttl = int(headers.get(TTL_HEADER.lower(), self.token_ttl_seconds))
        except ValueError:
            ttl = self.token_ttl_seconds
        self.tokens_fetched += 1
        self._cache.store(body.strip(), ttl, self._clock())
        log.debug("IMDS session token obtained", extra={"ttl_seconds": ttl})
        return body.strip()

    def token(self) -> str:
        with self._lock:
            return self._cache.valid(self._clock()) or self._fetch_token()

    def invalidate_token(self) -> None:
        with self._lock:
            self._cache.invalidate()

    # ------------------------------------------------------------------------------------------ get

    def get(self, path: str) -> str | None:
        """GET a metadata path with the session token. None on 404 (no such item: no event)."""
        status, _, body = self._request("GET", path, {TOKEN_HEADER: self.token()})
        if status == 401:
            # The token expired early or IMDS restarted: one new token, one retry.
            log.info("IMDS answered 401; fetching a new session token", extra={"path": path})
            self.invalidate_token()
            status, _, body = self._request("GET", path, {TOKEN_HEADER: self.token()})
            if status == 401:
                raise ImdsUnauthorized(f"IMDS answered 401 on GET {path} even with a fresh token")
        if status == 404:
            return None
        if status != 200:
            raise ImdsError(f"IMDS answered {status} on GET {path}")
        return body

    def get_required(self, path: str) -> str:
        value = self.get(path)
        if value is None or not value.strip():
            raise ImdsError(f"IMDS has no value at {path}")
        return value.strip()

    # ------------------------------------------------------------------------------------- readings

    def identity(self) -> Identity:
        return Identity(
            instance_id=self.get_required(INSTANCE_ID_PATH),
            availability_zone=self.get_required(AVAILABILITY_ZONE_PATH),
            instance_type=self.get_required(INSTANCE_TYPE_PATH),
        )

    def observe(self) -> Observation:
        return Observation(
            instance_action=self.get(INSTANCE_ACTION_PATH),
            rebalance=self.get(REBALANCE_PATH),
            scheduled_events=self.get(SCHEDULED_EVENTS_PATH),
        )
