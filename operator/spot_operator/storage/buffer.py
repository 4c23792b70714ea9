"""A bounded in-memory write buffer and the background task that flushes it to the database.

Writers call :meth:`WriteBuffer.offer`, which never waits: it appends and returns. The flusher writes
batches in a worker thread; while the database is unreachable it keeps the rows and retries with
exponential backoff (capped), so the operator keeps running and nothing in the failover path ever
waits on PostgreSQL. Every write is idempotent (keys and ``ON CONFLICT``), so a batch retried after a
commit whose acknowledgement was lost changes nothing.

When the bound (in rows) is hit, the oldest price observations are dropped first (AWS keeps 90 days
of price history, they can be fetched again), then the oldest of anything; dropped rows are counted
in ``spot_optimizer_store_dropped_rows_total{kind,reason="overflow"}``. A write the database refuses
as invalid (integrity or data error) is isolated by retrying the batch's items one by one, then
dropped, logged with the error, and counted with ``reason="rejected"``: retrying it forever would
block everything behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import Counter
from sqlalchemy import exc
from sqlalchemy.orm import Session, sessionmaker

from spot_operator import metrics
from spot_operator.errors import StoreUnavailable

log = logging.getLogger(__name__)

# Lives here until metrics.py (shared) takes it; registered in the operator's registry all the same.
STORE_DROPPED_ROWS: Final = Counter(
    "spot_optimizer_store_dropped_rows_total",
    "Rows the store gave up on: buffer full while the database was away (overflow), or refused (rejected).",
    ["kind", "reason"],
    registry=metrics.REGISTRY,
)

OBSERVATIONS: Final = "observations"


@dataclass
class _Item:
    kind: str
    rows: int
    write: Callable[[Session], object]
    attempts: int = field(default=0)


def is_transient(error: BaseException) -> bool:
    """Worth retrying as is: the database is away or the connection broke, not the data at fault."""
    if isinstance(error, StoreUnavailable | ConnectionError | TimeoutError):
        return True
    if isinstance(error, exc.IntegrityError | exc.DataError):
        return False
    if isinstance(error, exc.DBAPIError):
        return True  # OperationalError, InterfaceError, a dropped connection, a failover, ...
    return isinstance(error, exc.TimeoutError | exc.DisconnectionError)


class WriteBuffer:
    """Bounded, ordered buffer of pending writes, flushed by :meth:`run` in the background."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        max_rows: int = 200_000,
        batch_rows: int = 20_000,
        flush_interval: float = 1.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        before_first_write: Callable[[], object] | None = None,
    ) -> None:
        if max_rows < 1 or batch_rows < 1:
            raise ValueError("max_rows and batch_rows must be >= 1")
        self.sessions = sessions
        self.max_rows = max_rows
        self.batch_rows = batch_rows
        self.flush_interval = flush_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._before_first_write = before_first_write
        self._prepared = before_first_write is None
        self._items: deque[_Item] = deque()
        self._in_flight = 0
        self._rows = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self.available = True  # False from a failed attempt until the next successful one
        self.last_error: BaseException | None = None
        self.dropped: dict[tuple[str, str], int] = {}
        self.written_rows = 0

    # ---------------------------------------------------------------------------------- writers

    @property
    def buffered(self) -> int:
        """Rows not yet written (waiting, or in the batch being written)."""
        return self._rows + self._in_flight

    def offer(self, kind: str, rows: int, write: Callable[[Session], object]) -> None:
        """Queue a write of ``rows`` rows. Never blocks; may drop the oldest rows to stay bounded."""
        self._items.append(_Item(kind, max(rows, 1), write))
        self._rows += max(rows, 1)
        self._idle.clear()
        self._shrink()
        self._publish()
        self._wake.set()

    def _shrink(self) -> None:
        if self.buffered <= self.max_rows:
            return
        for only_observations in (True, False):
            survivors: deque[_Item] = deque()
            while self._items and self.buffered > self.max_rows:
                item = self._items.popleft()
                if only_observations and item.kind != OBSERVATIONS:
                    survivors.append(item)
                    continue
                self._drop(item, "overflow")
            survivors.extend(self._items)
            self._items = survivors
            if self.buffered <= self.max_rows:
                return

    def _drop(self, item: _Item, reason: str) -> None:
        self._rows -= item.rows
        self._count_drop(item, reason)

    def _count_drop(self, item: _Item, reason: str) -> None:
        key = (item.kind, reason)
        self.dropped[key] = self.dropped.get(key, 0) + item.rows
        STORE_DROPPED_ROWS.labels(item.kind, reason).inc(item.rows)

    def _publish(self) -> None:
        metrics.DB_BUFFERED_ROWS.set(self.buffered)

    # ---------------------------------------------------------------------------------- flusher

    async def run(self) -> None:
        """Flush until :meth:`stop`; never raises because the database is away."""
        backoff = self.backoff_initial
        while True:
            if not self._items:
                self._idle.set()
                if self._stopping:
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.flush_interval)
                continue
            batch = self._take()
            try:
                await asyncio.to_thread(self._write, batch)
            except Exception as error:
                self._put_back(batch)
                if is_transient(error):
                    self._unavailable(error, backoff)
                    if await self._sleep(backoff * (0.5 + random.random() / 2)):
                        return
                    backoff = min(backoff * 2, self.backoff_max)
                    continue
                await self._isolate()
                continue
            self._done(batch)
            backoff = self.backoff_initial

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Ask :meth:`run` to finish after flushing what it can within ``grace_seconds``."""
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), grace_seconds)
        except TimeoutError:
            log.warning("store stopping with %d rows not written (database away)", self.buffered)

    async def drained(self, wait_seconds: float) -> bool:
        """Wait until everything offered so far is written (tests, shutdown). False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), wait_seconds)
            return True
        except TimeoutError:
            return False

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        rows = 0
        while self._items and (not batch or rows + self._items[0].rows <= self.batch_rows):
            item = self._items.popleft()
            batch.append(item)
            rows += item.rows
        self._rows -= rows
        self._in_flight = rows
        return batch

    def _put_back(self, batch: list[_Item]) -> None:
        for item in reversed(batch):
            item.attempts += 1
            self._items.appendleft(item)
        self._rows += sum(item.rows for item in batch)
        self._in_flight = 0
        self._shrink()
        self._publish()

    def _done(self, batch: list[_Item]) -> None:
        self.written_rows += self._in_flight
        self._in_flight = 0
        if not self.available:
            log.info("database reachable again; %d rows still buffered", self.buffered)
        self.available = True
        self.last_error = None
        self._publish()

    def _write(self, batch: list[_Item]) -> None:
        if not self._prepared:
            assert self._before_first_write is not None
            try:
                self._before_first_write()
            except Exception as error:
                # Preparing (migrating) is about the database, never about these rows: retry, keep them.
                raise StoreUnavailable(f"preparing the database failed: {error}") from error
            self._prepared = True
        with self.sessions.begin() as session:
            for item in batch:
                item.write(session)

    def _unavailable(self, error: BaseException, backoff: float) -> None:
        if self.available:
            log.warning("database unreachable, buffering writes (%d rows): %s", self.buffered, error)
        self.available = False
        self.last_error = error
        log.debug("retrying the database in %.1f s", backoff)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, cut short by stop(); True if stopping."""
        if self._stopping:
            return True
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        return self._stopping

    async def _isolate(self) -> None:
        """The head batch was refused as invalid: write its items one by one, dropping the bad ones."""
        batch = self._take()
        for n, item in enumerate(batch):
            try:
                await asyncio.to_thread(self._write, [item])
            except Exception as error:
                if is_transient(error):
                    # The database went away meanwhile: what is not written yet goes back, in order.
                    self._put_back(batch[n:])
                    self._unavailable(error, self.backoff_initial)
                    return
                log.error("store refused a %s write of %d rows, dropping it: %s", item.kind, item.rows, error)
                self._in_flight -= item.rows
                self._count_drop(item, "rejected")
                continue
            self._in_flight -= item.rows
            self.written_rows += item.rows
        self._in_flight = 0
        self.available = True
        self._publish()
