"""Look at the sandbox while waiting for something: every change goes on the timeline, the savings accrue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from spot_operator.sandbox.changes import changes
from spot_operator.sandbox.ledger import Ledger
from spot_operator.sandbox.observer import Observer
from spot_operator.sandbox.services import SandboxFailure
from spot_operator.sandbox.snapshot import Snapshot
from spot_operator.sandbox.timeline import Timeline


class Clock:
    """Seconds since the sandbox started (the event loop's monotonic clock)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.start = self.loop.time()

    def __call__(self) -> float:
        return self.loop.time() - self.start


@dataclass
class Watch:
    """Looks every ``poll`` seconds while waiting, never past ``deadline`` (clock seconds)."""

    observer: Observer
    timeline: Timeline
    clock: Clock
    deadline: float
    ledger: Ledger = field(default_factory=Ledger)
    poll: float = 0.2
    last: Snapshot = field(default_factory=Snapshot)
    _last_at: float | None = None

    async def look(self) -> Snapshot:
        snap = await self.observer.look()
        at = self.clock()
        if self._last_at is not None:
            self.ledger.accrue(self.last, at - self._last_at)
        for change in changes(self.last, snap):
            self.timeline.change(at, change)
        self.last, self._last_at = snap, at
        return snap

    async def until(
        self, what: str, predicate: Callable[[Snapshot], object], within: float
    ) -> tuple[Snapshot, float]:
        """Wait until ``predicate`` holds for a fresh snapshot; return it and when it was taken."""
        started = self.clock()
        limit = min(started + within, self.deadline)
        while True:
            snap = await self.look()
            if predicate(snap):
                return snap, self.clock()
            if self.clock() > limit:
                budget = " (the sandbox's time budget is spent)" if limit == self.deadline else ""
                waited = self.clock() - started
                raise SandboxFailure(f"timed out after {waited:.0f} s waiting for {what}{budget}")
            await asyncio.sleep(self.poll)
