"""The SQL implementation of ``ports.PriceStore``: buffered writes, guarded reads.

Writes (``record_*``) are validated at once (a bad row raises in the caller) and then queued in the
:class:`~.buffer.WriteBuffer`; they never wait on the database. Reads run in a worker thread with a
timeout and raise :class:`~spot_operator.errors.StoreUnavailable` when the database is away — at once
when the flusher already knows it is — so callers degrade instead of hanging. Reads see what has been
flushed, not what is still buffered.

Construction never touches the database: the operator starts while PostgreSQL is down, migrations
run (``upgrade_to_head``) before the first write once it is reachable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from spot_operator.errors import StoreUnavailable
from spot_operator.planning.model import Pool
from spot_operator.ports import (
    AgentSavings,
    DecisionRecord,
    InterruptionRecord,
    PriceObservation,
    PricePoint,
    SwitchRecord,
)

from . import history, series
from .buffer import OBSERVATIONS, WriteBuffer, is_transient
from .db import make_engine, make_session_factory
from .history import split_agent
from .ingest import ObservationColumns, ingest_columns
from .migrate import upgrade_to_head
from .savings import savings_for as _savings_for

T = TypeVar("T")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SqlPriceStore:
    """``PriceStore`` over SQLAlchemy. Call :meth:`start` in the operator's loop, :meth:`close` at exit."""

    def __init__(
        self,
        engine: Engine,
        *,
        migrate: bool = True,
        max_rows: int = 200_000,
        read_timeout: float = 5.0,
        clock: Callable[[], datetime] = _utc_now,
        flush_interval: float = 1.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_session_factory(engine)
        self.read_timeout = read_timeout
        self.clock = clock
        url = engine.url.render_as_string(hide_password=False)
        self.buffer = WriteBuffer(
            self.sessions,
            max_rows=max_rows,
            flush_interval=flush_interval,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            before_first_write=(lambda: upgrade_to_head(url)) if migrate else None,
        )
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, **kwargs: object) -> SqlPriceStore:
        return cls(make_engine(url), **kwargs)  # type: ignore[arg-type]

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.buffer.run(), name="price-store-flusher")

    async def close(self, grace_seconds: float = 5.0) -> None:
        """Flush what can be flushed within ``grace_seconds``, then stop the flusher."""
        await self.buffer.stop(grace_seconds)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                if not self._task.cancelled():
                    raise
            self._task = None
        self.engine.dispose()

    @property
    def available(self) -> bool:
        return self.buffer.available

    # ------------------------------------------------------------------------------------ writes

    async def record_observations(self, observations: Sequence[PriceObservation]) -> None:
        if not observations:
            return
        batch = ObservationColumns.from_observations(observations)
        received = self.clock()
        self.buffer.offer(OBSERVATIONS, len(batch), lambda s: ingest_columns(s, batch, received))

    async def record_on_demand_prices(self, region: str, prices: Mapping[str, float]) -> None:
        if not prices:
            return
        frozen = dict(prices)
        at = self.clock()
        self.buffer.offer(
            "on_demand", len(frozen), lambda s: series.record_on_demand_prices(s, region, frozen, at)
        )

    async def record_interruption(self, event: InterruptionRecord) -> None:
        _aware(event.at)
        recorded = self.clock()
        self.buffer.offer("interruption", 1, lambda s: history.record_interruption(s, event, recorded))

    async def record_switch(self, switch: SwitchRecord) -> None:
        split_agent(switch.agent)
        _aware(switch.started_at)
        self.buffer.offer("switch", 1, lambda s: history.record_switch(s, switch))

    async def record_decision(self, decision: DecisionRecord) -> None:
        split_agent(decision.agent)
        _aware(decision.at)
        self.buffer.offer("decision", 1, lambda s: history.record_decision(s, decision))

    # ------------------------------------------------------------------------------------- reads

    async def savings_for(self, agent: str, now: datetime) -> AgentSavings:
        split_agent(agent)
        return await self._read(lambda s: _savings_for(s, agent, now))

    async def recent_prices(
        self, pools: Sequence[Pool], since: datetime
    ) -> dict[Pool, tuple[PricePoint, ...]]:
        wanted = list(pools)
        return await self._read(lambda s: series.recent_prices(s, wanted, since))

    async def latest_prices(self, pools: Sequence[Pool]) -> dict[Pool, float]:
        wanted = list(pools)
        return await self._read(lambda s: series.latest_prices(s, wanted))

    async def _read(self, query: Callable[[Session], T]) -> T:
        if not self.buffer.available:
            raise StoreUnavailable(f"database unreachable: {self.buffer.last_error}")

        def run() -> T:
            with self.sessions() as session:
                return query(session)

        try:
            return await asyncio.wait_for(asyncio.to_thread(run), self.read_timeout)
        except TimeoutError as error:
            raise StoreUnavailable(f"database read timed out after {self.read_timeout:.0f} s") from error
        except Exception as error:
            if is_transient(error):
                raise StoreUnavailable(f"database unreachable: {error}") from error
            raise


def _aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: pass an aware UTC datetime")
