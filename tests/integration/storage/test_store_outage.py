"""The store keeps the operator running while PostgreSQL is away, and loses nothing it buffered.

The store talks to the real server through a TCP proxy that can refuse connections (nothing listens
on its port, as when the server is stopped) and serve again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, make_url, select
from sqlalchemy.orm import Session, sessionmaker

from spot_operator import metrics
from spot_operator.errors import StoreUnavailable
from spot_operator.planning.model import Pool
from spot_operator.ports import DecisionRecord, InterruptionRecord, PriceObservation, PriceStore, SwitchRecord
from spot_operator.storage.buffer import STORE_DROPPED_ROWS
from spot_operator.storage.db import make_engine
from spot_operator.storage.models import Base, DecisionRow, InterruptionRow, RawPriceRow, SwitchRow
from spot_operator.storage.store import SqlPriceStore
from tests.fakes.postgres import TcpProxy

pytestmark = pytest.mark.postgres

T0 = datetime(2022, 6, 1, tzinfo=UTC)
A = Pool("m5.large", "us-east-1a")


def store_through(proxy: TcpProxy, database_url: str, max_rows: int = 200_000) -> SqlPriceStore:
    url = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    engine = make_engine(url.render_as_string(hide_password=False), connect_timeout=2)
    return SqlPriceStore(
        engine, max_rows=max_rows, flush_interval=0.05, backoff_initial=0.05, backoff_max=0.2
    )


def page(n: int, offset: int = 0) -> list[PriceObservation]:
    return [PriceObservation(A, T0 + timedelta(seconds=offset + i), 0.05 + i * 1e-5) for i in range(n)]


def count(sessions: sessionmaker[Session], table: type[Base]) -> int:
    with sessions.begin() as s:
        return int(s.execute(select(func.count()).select_from(table)).scalar_one())


async def eventually(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def dropped(kind: str, reason: str) -> float:
    return float(STORE_DROPPED_ROWS.labels(kind, reason)._value.get())


async def test_writes_made_while_the_database_is_away_arrive_when_it_is_back(
    database_url: str, postgres_proxy: TcpProxy, sessions: sessionmaker[Session]
) -> None:
    store = store_through(postgres_proxy, database_url)
    port: PriceStore = store  # the store is what the operator's port asks for
    await store.start()
    try:
        started = time.monotonic()
        for n in range(10):
            await port.record_observations(page(100, offset=100 * n))
        await port.record_interruption(InterruptionRecord("i-1", "interruption", T0, A))
        await port.record_switch(SwitchRecord("team/build", "sw-1", "emergency", A, T0, completed_at=T0))
        await port.record_decision(DecisionRecord("team/build", T0, "rules", "1", {}, {}, None, "stay"))
        assert time.monotonic() - started < 0.5  # nothing waited on the database

        await eventually(lambda: not store.available)
        assert store.buffer.buffered == 1003
        assert metrics.DB_BUFFERED_ROWS._value.get() == 1003
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await port.latest_prices([A])
        assert time.monotonic() - started < 0.5  # a read fails at once while the database is away

        await postgres_proxy.start()
        assert await store.buffer.drained(30)
        assert store.available
        assert metrics.DB_BUFFERED_ROWS._value.get() == 0
        assert count(sessions, RawPriceRow) == 1000
        assert (
            count(sessions, InterruptionRow),
            count(sessions, SwitchRow),
            count(sessions, DecisionRow),
        ) == (1, 1, 1)
    finally:
        await store.close()


async def test_an_outage_in_the_middle_loses_nothing(
    database_url: str, postgres_proxy: TcpProxy, sessions: sessionmaker[Session]
) -> None:
    store = store_through(postgres_proxy, database_url)
    await postgres_proxy.start()
    await store.start()
    try:
        await store.record_observations(page(500))
        assert await store.buffer.drained(30)
        await postgres_proxy.stop()  # cuts the pooled connections too
        await store.record_observations(page(500, offset=250))  # half of it repeats stored rows
        await eventually(lambda: not store.available)
        await postgres_proxy.start()
        assert await store.buffer.drained(30)
        assert count(sessions, RawPriceRow) == 750
        assert store.buffer.dropped == {}
    finally:
        await store.close()


async def test_a_full_buffer_drops_the_oldest_prices_first_and_counts_them(
    database_url: str, postgres_proxy: TcpProxy, sessions: sessionmaker[Session]
) -> None:
    store = store_through(postgres_proxy, database_url, max_rows=100)
    before = dropped("observations", "overflow")
    await store.start()
    try:
        await store.record_switch(SwitchRecord("team/build", "sw-1", "manual", A, T0, completed_at=T0))
        for n in range(3):
            await store.record_observations(page(60, offset=100 * n))
        assert store.buffer.buffered <= 100
        assert dropped("observations", "overflow") - before == 120
        await postgres_proxy.start()
        assert await store.buffer.drained(30)
        assert count(sessions, SwitchRow) == 1  # the switch outlived the prices queued after it
        assert count(sessions, RawPriceRow) == 60
    finally:
        await store.close()


async def test_a_row_the_database_refuses_is_dropped_alone(
    database_url: str, postgres_proxy: TcpProxy, sessions: sessionmaker[Session]
) -> None:
    store = store_through(postgres_proxy, database_url)
    before = dropped("decision", "rejected")
    await postgres_proxy.start()
    await store.start()
    try:
        # Queued together, so flushed in one batch; the second is too long for its column.
        await store.record_decision(DecisionRecord("team/a", T0, "rules", "1", {}, {}, None, "ok"))
        await store.record_decision(DecisionRecord("team/b", T0, "x" * 100, "1", {}, {}, None, "bad"))
        await store.record_decision(DecisionRecord("team/c", T0, "rules", "1", {}, {}, None, "ok"))
        assert await store.buffer.drained(30)
        assert count(sessions, DecisionRow) == 2
        assert dropped("decision", "rejected") - before == 1
        assert store.available
    finally:
        await store.close()


async def test_bad_input_raises_in_the_caller_not_in_the_flusher(
    database_url: str, postgres_proxy: TcpProxy
) -> None:
    store = store_through(postgres_proxy, database_url)
    with pytest.raises(ValueError, match="naive"):
        await store.record_observations([PriceObservation(A, datetime(2022, 6, 1), 0.1)])
    with pytest.raises(ValueError, match="unknown price source"):
        await store.record_observations([PriceObservation(A, T0, 0.1, source="nope")])
    with pytest.raises(ValueError, match="namespace"):
        await store.record_decision(DecisionRecord("no-namespace", T0, "rules", "1", {}, {}, None, ""))
    assert store.buffer.buffered == 0
    await store.close()
