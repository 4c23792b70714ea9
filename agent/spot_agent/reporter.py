"""Deliver spooled reports to the operator's agent API, oldest first, with retries and backoff.

A report leaves the spool only when the operator answered 2xx (delivered) or a definitive 4xx (it will
never be accepted: malformed, unknown instance); anything else (no answer, 5xx, 401/403 while a
rotated token reaches the instance, 408, 429) is retried with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import random
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from spot_agent import __version__
from spot_agent.protocol import Report, report_path
from spot_agent.spool import Spool, Spooled

log = logging.getLogger(__name__)

DEFINITIVE = frozenset({400, 404, 405, 409, 410, 413, 415, 422})


class Delivery(StrEnum):
    DELIVERED = "delivered"
    REJECTED = "rejected"  # definitive: retrying cannot help
    RETRY = "retry"


def classify(status: int | None) -> Delivery:
    """What an HTTP status (None: no answer) means for a spooled report."""
    if status is None:
        return Delivery.RETRY
    if 200 <= status < 300:
        return Delivery.DELIVERED
    if status in DEFINITIVE:
        return Delivery.REJECTED
    return Delivery.RETRY


def backoff_seconds(attempt: int, initial: float, maximum: float, jitter: float) -> float:
    """Delay before retry ``attempt`` (1-based): exponential, capped, with ``jitter`` in [0, 1) taking up
    to half of it off so agents that lost the operator together do not come back in step."""
    base = min(maximum, initial * 2.0 ** max(0, attempt - 1))
    return base * (1.0 - 0.5 * jitter)


@dataclass(frozen=True)
class SendResult:
    delivery: Delivery
    status: int | None
    message: str


class Reporter:
    """POSTs one report; synchronous (urllib), run in a thread by the courier."""

    def __init__(
        self,
        operator_url: str,
        namespace: str,
        name: str,
        token: Callable[[], str],
        timeout_seconds: float = 10.0,
        ca_file: Path | None = None,
    ) -> None:
        self.operator_url = operator_url.rstrip("/")
        self.namespace = namespace
        self.name = name
        self._token = token
        self.timeout_seconds = timeout_seconds
        self._ssl = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    def url(self, report: Report) -> str:
        return self.operator_url + report_path(self.namespace, self.name, report)

    def send(self, report: Report) -> SendResult:
        try:
            token = self._token()
        except ValueError as exc:  # ConfigError: no token on disk yet
            return SendResult(Delivery.RETRY, None, str(exc))
        request = urllib.request.Request(
            self.url(report),
            data=report.to_json(),
            method="POST",
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "User-Agent": f"spot-agent/{__version__}",
            },
        )
        context = self._ssl if request.type == "https" else None
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds, context=context) as response:
                status = response.status
                body = response.read(65536)
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read(65536)
            exc.close()
        except (
            OSError,
            ValueError,
            http.client.HTTPException,
        ) as exc:  # URLError, timeouts, resets, cut answers
            reason = getattr(exc, "reason", exc)
            return SendResult(Delivery.RETRY, None, f"operator unreachable at {self.operator_url}: {reason}")
        return SendResult(classify(status), status, _message(body))


def _message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:300].decode("utf-8", errors="replace")
    if isinstance(data, dict):
        return str(data.get("message") or data.get("status") or "")[:1000]
    return ""


class Courier:
    """Drains the spool in order. ``wake()`` when something was spooled; ``run()`` until stopped."""

    def __init__(
        self,
        spool: Spool,
        reporter: Reporter,
        retry_initial_seconds: float = 0.5,
        retry_max_seconds: float = 30.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.spool = spool
        self.reporter = reporter
        self.retry_initial_seconds = retry_initial_seconds
        self.retry_max_seconds = retry_max_seconds
        self._jitter = jitter
        self._wake = asyncio.Event()
        self.delivered = 0
        self.rejected = 0
        self.attempts = 0

    def wake(self) -> None:
        self._wake.set()

    async def send_head(self) -> SendResult | None:
        """One attempt at the oldest report; it leaves the spool unless the answer says retry."""
        entry = self.spool.peek()
        if entry is None:
            return None
        self.attempts += 1
        result = await asyncio.to_thread(self.reporter.send, entry.report)
        self._settle(entry, result)
        return result

    def _settle(self, entry: Spooled, result: SendResult) -> None:
        fields = {"report": entry.kind, "seq": entry.seq, "status": result.status}
        if result.delivery is Delivery.DELIVERED:
            self.spool.remove(entry)
            self.delivered += 1
            log.info("report delivered", extra={**fields, "reply": result.message})
        elif result.delivery is Delivery.REJECTED:
            self.spool.remove(entry)
            self.rejected += 1
            log.error("report rejected by the operator; dropped", extra={**fields, "reason": result.message})
        else:
            log.warning("report not delivered; will retry", extra={**fields, "reason": result.message})

    async def drain(self) -> bool:
        """One attempt per report, in order, stopping at the first that must be retried. True if empty."""
        while self.spool.peek() is not None:
            result = await self.send_head()
            if result is not None and result.delivery is Delivery.RETRY:
                return False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            self._wake.clear()
            if self.spool.peek() is None:
                await _wait_any(stop, self._wake, None)
                continue
            result = await self.send_head()
            if result is None or result.delivery is not Delivery.RETRY:
                failures = 0
                continue
            failures += 1
            delay = backoff_seconds(
                failures, self.retry_initial_seconds, self.retry_max_seconds, self._jitter()
            )
            # A new report cuts the wait short: a notice must not sit out a long backoff if the operator
            # is back. It still queues behind the report being retried (order is kept).
            await _wait_any(stop, self._wake, delay)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float | None) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
