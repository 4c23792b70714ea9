"""The sandbox's embedded store: a SQLite file the operator writes its price history and switches to, and
the sandbox reads back (latest prices for the savings, row counts for the summary). Blocking calls."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from spot_operator.storage.db import make_engine
from spot_operator.storage.migrate import upgrade_to_head
from spot_operator.storage.models import DecisionRow, PoolRow, RawPriceRow, SwitchRow


@dataclass(frozen=True)
class StoreCounts:
    price_observations: int
    pools: int
    switches: int
    decisions: int


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'spot-sandbox.db'}"


def prepare(url: str) -> Engine:
    """Migrate the (new) database to head; return an engine for the sandbox's own reads."""
    upgrade_to_head(url)
    return make_engine(url)


def latest_spot_prices(engine: Engine) -> dict[str, float]:
    """Pool name (``<type>.<zone>``) -> the newest raw spot price the operator recorded."""
    stmt = (
        select(PoolRow.instance_type, PoolRow.zone, RawPriceRow.price)
        .join(PoolRow, PoolRow.id == RawPriceRow.pool_id)
        .order_by(RawPriceRow.at, RawPriceRow.received_at)
    )
    with Session(engine) as session:
        return {f"{t}.{z}": float(price) for t, z, price in session.execute(stmt)}


def counts(engine: Engine) -> StoreCounts:
    with Session(engine) as session:

        def count(model: type[RawPriceRow | PoolRow | SwitchRow | DecisionRow]) -> int:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

        return StoreCounts(count(RawPriceRow), count(PoolRow), count(SwitchRow), count(DecisionRow))
