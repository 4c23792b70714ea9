"""An EC2 instance metadata service (IMDSv2 only) on 127.0.0.1, for the agent's tests.

It follows amazon-ec2-metadata-mock's public formats: a session token from ``PUT /latest/api/token``
(TTL header required, 1..21600 s, echoed back), 401 on a missing, unknown or expired token, 404 for an
event that is not (yet) there, instance-action ``{"action", "time"}``, rebalance ``{"noticeTime"}``,
scheduled events as a list with times like ``21 Jan 2019 09:00:43 GMT``. Events are triggered by time:
``schedule_interruption(after_seconds=3)`` makes instance-action appear three seconds later (of the
emulator's clock, which ``advance()`` moves forward without sleeping).

It runs in a thread (http.server), so blocking clients, asyncio tests and subprocesses can all use it.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TTL = 21600
EVENT_TIME_FORMAT = "%d %b %Y %H:%M:%S GMT"

_PAGE = (
    '<?xml version="1.0" encoding="iso-8859-1"?>\n'
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
    '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
    '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n <head>\n  <title>{0}</title>\n'
    " </head>\n <body>\n  <h1>{0}</h1>\n </body>\n</html>"
)


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event_time(value: datetime) -> str:
    value = value.astimezone(UTC)
    return f"{value.day} {value.strftime('%b %Y %H:%M:%S')} GMT"


@dataclass
class _Timed:
    """Something that appears at ``at`` (emulator clock) with a payload made then."""

    at: float
    payload: dict[str, object]


@dataclass
class Request:
    method: str
    path: str
    status: int
    had_token: bool


@dataclass
class ImdsEmulator:
    instance_id: str = "i-1234567890abcdef0"
    availability_zone: str = "us-east-1a"
    instance_type: str = "m5.large"
    region: str = "us-east-1"
    # AEMM answers 404 on scheduled events until one is scheduled; EC2 may answer "[]". Both are valid.
    empty_scheduled_events: str = "404"
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    tokens_issued: int = 0
    # Emulate the metadata hop limit: the token PUT gets no answer (connection closed).
    drop_token_requests: bool = False
    # Refuse every token (401 on every GET), to test a client that must give up.
    reject_tokens: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._tokens: dict[str, tuple[float, int]] = {}  # token -> (issued at, ttl)
        self._interruption: _Timed | None = None
        self._rebalance: _Timed | None = None
        self._events: list[_Timed] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------------------------------- clock

    def now(self) -> float:
        return time.monotonic() + self._offset

    def wall(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward: tokens expire and triggers fire as if time had passed."""
        with self._lock:
            self._offset += seconds

    # ------------------------------------------------------------------------------------- triggers

    def schedule_interruption(
        self, after_seconds: float = 0.0, action: str = "terminate", time_of_action: datetime | None = None
    ) -> None:
        """instance-action appears after ``after_seconds``; the action is two minutes later by default."""
        with self._lock:
            at = self.now() + after_seconds
            when = time_of_action or (self.wall() + timedelta(seconds=after_seconds + 120))
            self._interruption = _Timed(at, {"action": action, "time": _rfc3339(when)})

    def schedule_rebalance(self, after_seconds: float = 0.0, notice_time: datetime | None = None) -> None:
        with self._lock:
            at = self.now() + after_seconds
            when = notice_time or (self.wall() + timedelta(seconds=after_seconds))
            self._rebalance = _Timed(at, {"noticeTime": _rfc3339(when)})

    def schedule_maintenance(
        self,
        after_seconds: float = 0.0,
        code: str = "system-reboot",
        state: str = "active",
        event_id: str | None = None,
        not_before: datetime | None = None,
        duration: timedelta = timedelta(hours=2),
    ) -> str:
        with self._lock:
            at = self.now() + after_seconds
            start = not_before or (self.wall() + timedelta(days=7))
            event_id = event_id or f"instance-event-{secrets.token_hex(8)}"
            payload: dict[str, object] = {
                "Code": code,
                "Description": f"The instance is scheduled for {code}",
                "State": state,
                "EventId": event_id,
                "NotBefore": _event_time(start),
                "NotAfter": _event_time(start + duration),
            }
            self._events.append(_Timed(at, payload))
            return event_id

    def set_raw_interruption(self, body: str) -> None:
        """Serve this exact body on instance-action (to test a malformed payload)."""
        with self._lock:
            self._interruption = _Timed(self.now(), {"__raw__": body})

    def clear(self) -> None:
        with self._lock:
            self._interruption = None
            self._rebalance = None
            self._events = []

    def expire_tokens(self) -> None:
        """Forget every token issued (as after an IMDS restart): the next request with one gets 401."""
        with self._lock:
            self._tokens.clear()

    def count(self, path: str, status: int | None = None) -> int:
        return sum(1 for r in self.requests if r.path == path and (status is None or r.status == status))

    # ------------------------------------------------------------------------------------- handling

    def _token_valid(self, token: str | None) -> bool:
        if not token or self.reject_tokens:
            return False
        issued = self._tokens.get(token)
        if issued is None:
            return False
        at, ttl = issued
        if self.now() - at >= ttl:
            del self._tokens[token]
            return False
        return True

    def _issue(self, ttl_header: str | None) -> tuple[int, str, dict[str, str]]:
        try:
            ttl = int(ttl_header or "")
        except ValueError:
            return 400, _PAGE.format("400 - Bad Request"), {}
        if not 1 <= ttl <= MAX_TTL:
            return 400, _PAGE.format("400 - Bad Request"), {}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (self.now(), ttl)
        self.tokens_issued += 1
        return 200, token, {TTL_HEADER: str(ttl)}

    def _due(self, item: _Timed | None) -> _Timed | None:
        return item if item is not None and self.now() >= item.at else None

    def _metadata(self, path: str) -> tuple[int, str, str]:
        """(status, body, content type) of a GET with a valid token."""
        static = {
            "/latest/meta-data/instance-id": self.instance_id,
            "/latest/meta-data/instance-type": self.instance_type,
            "/latest/meta-data/instance-life-cycle": "spot",
            "/latest/meta-data/placement/availability-zone": self.availability_zone,
            "/latest/meta-data/placement/region": self.region,
            "/latest/meta-data/ami-id": "ami-0a887e401f7654935",
            "/latest/meta-data/local-ipv4": "172.16.34.43",
        }
        if path in static:
            return 200, static[path], "text/plain"
        if path == "/latest/dynamic/instance-identity/document":
            doc = {
                "instanceId": self.instance_id,
                "instanceType": self.instance_type,
                "availabilityZone": self.availability_zone,
                "region": self.region,
                "architecture": "x86_64",
            }
            return 200, json.dumps(doc, indent="\t"), "application/json"
        if path in ("/latest/meta-data/spot/instance-action", "/latest/meta-data/spot/termination-time"):
            due = self._due(self._interruption)
            if due is None:
                return 404, _PAGE.format("404 - Not Found"), "text/html"
            if "__raw__" in due.payload:
                return 200, str(due.payload["__raw__"]), "application/json"
            if path.endswith("termination-time"):
                return 200, str(due.payload["time"]), "text/plain"
            return 200, json.dumps(due.payload, indent="\t"), "application/json"
        if path == "/latest/meta-data/events/recommendations/rebalance":
            due = self._due(self._rebalance)
            if due is None:
                return 404, _PAGE.format("404 - Not Found"), "text/html"
            return 200, json.dumps(due.payload, indent="\t"), "application/json"
        if path == "/latest/meta-data/events/maintenance/scheduled":
            events = [e.payload for e in self._events if self.now() >= e.at]
            if not events and self.empty_scheduled_events == "404":
                return 404, _PAGE.format("404 - Not Found"), "text/html"
            return 200, json.dumps(events, indent="\t"), "application/json"
        return 404, _PAGE.format("404 - Not Found"), "text/html"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet: tests read .requests
                return

            def _answer(
                self, status: int, body: str, ctype: str, headers: dict[str, str] | None = None
            ) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _path(self) -> str:
                path = self.path.split("?", 1)[0]
                return path.rstrip("/") if path != "/" else path

            def do_PUT(self) -> None:
                path = self._path()
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                headers: dict[str, str] = {}
                with emulator._lock:
                    if path == TOKEN_PATH and emulator.drop_token_requests:
                        emulator.requests.append(Request("PUT", path, 0, False))
                        self.close_connection = True
                        return
                    if path != TOKEN_PATH:
                        status, body, headers = 405, _PAGE.format("405 - Method Not Allowed"), {}
                    elif self.headers.get("X-Forwarded-For"):
                        status, body, headers = 403, _PAGE.format("403 - Forbidden"), {}
                    else:
                        status, body, headers = emulator._issue(self.headers.get(TTL_HEADER))
                    emulator.requests.append(Request("PUT", path, status, False))
                ctype = "text/plain" if status == 200 else "text/html"
                self._answer(status, body, ctype, headers)

            def do_GET(self) -> None:
                path = self._path()
                token = self.headers.get(TOKEN_HEADER)
                with emulator._lock:
                    if path == TOKEN_PATH:
                        status, body, ctype = 405, _PAGE.format("405 - Method Not Allowed"), "text/html"
                    elif not emulator._token_valid(token):
                        status, body, ctype = 401, _PAGE.format("401 - Unauthorized"), "text/html"
                    else:
                        status, body, ctype = emulator._metadata(path)
                    emulator.requests.append(Request("GET", path, status, bool(token)))
                self._answer(status, body, ctype)

        return Handler

    # ------------------------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        assert self._server is not None, "emulator not started"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> ImdsEmulator:
        self._server = ThreadingHTTPServer((self.host, self.port), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="imds-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering (the port is closed: clients get connection refused)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def restart(self) -> None:
        """Start again on the same port, forgetting every token (as after a reboot of the service)."""
        self.expire_tokens()
        self.start()


@pytest.fixture
def imds() -> Iterator[ImdsEmulator]:
    emulator = ImdsEmulator().start()
    try:
        yield emulator
    finally:
        emulator.stop()
