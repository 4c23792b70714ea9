"""The same storage on SQLite, the sandbox's zero-setup database (no PostgreSQL needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from spot_operator.planning.model import Pool
from spot_operator.ports import PriceObservation, SwitchRecord
from spot_operator.storage import model_registry as registry
from spot_operator.storage.cleaning_job import clean
from spot_operator.storage.db import make_engine, make_session_factory
from spot_operator.storage.ingest import ingest_observations
from spot_operator.storage.migrate import current_revision, downgrade, heads, upgrade_to_head
from spot_operator.storage.models import CleanPriceRow
from spot_operator.storage.retention import purge
from spot_operator.storage.store import SqlPriceStore

T0 = datetime(2022, 6, 1, tzinfo=UTC)
A = Pool("m5.large", "us-east-1a")
B = Pool("m5.large", "us-east-1b")


def test_the_whole_storage_works_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'prices.db'}"
    upgrade_to_head(url)
    assert current_revision(url) == heads()[0]
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    rows = [
        PriceObservation(A, T0, 0.03),
        PriceObservation(A, T0 + timedelta(hours=1), 0.04),
        PriceObservation(B, T0, 0.05),
        PriceObservation(A, T0 + timedelta(minutes=30, seconds=10), 0.035, source="agent-replica"),
    ]
    with sessions.begin() as s:
        assert ingest_observations(s, rows, T0 + timedelta(hours=2)).inserted == 4
        assert ingest_observations(s, rows, T0 + timedelta(hours=2)).inserted == 0
        first = clean(s, [A, B], T0, T0 + timedelta(hours=2))
        second = clean(s, [A, B], T0, T0 + timedelta(hours=2))
        assert s.scalar(select(func.count()).select_from(CleanPriceRow)) == 48
        registry.save_version(s, "risk", "v1", T0, artifact=b"model")
        registry.save_version(s, "risk", "v2", T0, artifact=b"model 2")
        registry.activate(s, "risk", "v1", T0)
        registry.activate(s, "risk", "v2", T0)
        assert registry.fallback(s, "risk").version == "v1"  # type: ignore[union-attr]
    assert (first.points, first.written, first.filled) == (48, 48, 0)
    assert (second.written, second.deleted) == (0, 0)
    assert purge(sessions, "price_observations", T0 + timedelta(minutes=31), batch_size=1).deleted == 3
    engine.dispose()
    downgrade(url, "base")
    assert current_revision(url) is None


async def test_the_store_on_sqlite(tmp_path: Path) -> None:
    store = SqlPriceStore.from_url(f"sqlite:///{tmp_path / 'store.db'}", flush_interval=0.01)
    await store.start()
    try:
        await store.record_observations([PriceObservation(A, T0, 0.03)])
        await store.record_switch(SwitchRecord("team/x", "initial", "initial", A, T0, completed_at=T0))
        assert await store.buffer.drained(10)
        with store.sessions.begin() as s:
            clean(s, [A], T0, T0 + timedelta(hours=1))
        assert await store.latest_prices([A, B]) == {A: 0.03}
        points = (await store.recent_prices([A], T0))[A]
        assert [p.method for p in points[:2]] == ["observed", "held"]
        savings = await store.savings_for("team/x", T0 + timedelta(minutes=30))
        assert savings.unpriced_hours == pytest.approx(0.5)  # no on-demand price recorded yet
    finally:
        await store.close()
