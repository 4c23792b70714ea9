"""Poll IMDS for notices (every 5 s by default, 1 s at the fastest) and hand on each new one once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from spot_agent.imds import ImdsClient, ImdsError
from spot_agent.notices import NoticeTracker, read_notices
from spot_agent.protocol import NoticeReport

log = logging.getLogger(__name__)

MIN_INTERVAL_SECONDS = 1.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class Poller:
    def __init__(self, imds: ImdsClient, instance_id: str, clock: Callable[[], datetime] = utc_now) -> None:
        self.imds = imds
        self.instance_id = instance_id
        self._clock = clock
        self.tracker = NoticeTracker()
        self.imds_problem = ""  # the last IMDS failure; empty while IMDS answers
        self._logged_problems: set[str] = set()
        self.polls = 0

    def poll_once(self) -> list[NoticeReport]:
        """One round over the notice paths (blocking I/O): the notices not handed on before."""
        self.polls += 1
        try:
            observation = self.imds.observe()
        except ImdsError as exc:
            if str(exc) != self.imds_problem:  # once per distinct failure, not every poll
                log.error("IMDS poll failed", extra={"error": str(exc)})
            self.imds_problem = str(exc)
            return []
        if self.imds_problem:
            log.info("IMDS answers again", extra={"after": self.imds_problem[:200]})
            self.imds_problem = ""
        reading = read_notices(observation, self.instance_id, self._clock())
        for problem in reading.problems:
            if problem not in self._logged_problems:
                self._logged_problems.add(problem)
                log.error("IMDS payload not understood; reporting the worst case", extra={"problem": problem})
        fresh = self.tracker.fresh(reading.notices)
        for notice in fresh:
            log.warning(
                "notice",
                extra={
                    "kind": notice.kind.value,
                    "action": notice.action.value if notice.action else None,
                    "deadline": notice.deadline.isoformat() if notice.deadline else None,
                    "event_id": notice.event_id,
                    "idempotency_key": notice.idempotency_key,
                },
            )
        return fresh

    async def run(
        self,
        interval_seconds: float,
        on_notices: Callable[[list[NoticeReport]], Awaitable[None]],
        stop: asyncio.Event,
    ) -> None:
        interval = max(MIN_INTERVAL_SECONDS, interval_seconds)
        while not stop.is_set():
            started = time.monotonic()
            fresh = await asyncio.to_thread(self.poll_once)
            if fresh:
                await on_notices(fresh)
            remaining = interval - (time.monotonic() - started)
            if remaining > 0:
                with contextlib.suppress(TimeoutError):  # the interval passed: poll again
                    await asyncio.wait_for(stop.wait(), remaining)
