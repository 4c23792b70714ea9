"""The price-history schema: typed SQLAlchemy 2 models, portable between PostgreSQL and SQLite.

Conventions:
- The two big tables (raw observations, clean series) use compact integer keys (pool id, product id,
  source code) and carry no foreign keys: referential checks would run once per row during bulk loads.
  Their ids come from :mod:`.pools`, which upserts ``pools``/``products`` in the same transaction, and
  neither is ever deleted.
- Every relationship is ``lazy="raise"``: repositories load what they need explicitly and hand out
  frozen snapshots, never these objects.
- Timestamps are :class:`~.types.UtcDateTime` (aware UTC in Python on both dialects).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .columns import UtcDateTime, json_document

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an "INTEGER PRIMARY KEY"; a SMALLINT key would stay NULL there.
SmallId = SmallInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class PoolRow(Base):
    """A spot capacity pool: an instance type in a zone (zone name or zone ID, as the feed gave it)."""

    __tablename__ = "pools"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_type: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(32))

    __table_args__ = (
        UniqueConstraint("instance_type", "zone"),
        # Sibling zones of an instance type, for cross-pool gap filling.
        Index(None, "region", "instance_type"),
    )


class ProductRow(Base):
    """A product description ('Linux/UNIX', 'Windows', ...): prices differ per product in one pool."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class RawPriceRow(Base):
    """One price as reported. The key makes re-ingesting a page a no-op (first report wins)."""

    __tablename__ = "price_observations"

    pool_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    source: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # prices.model.RawSource
    at: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    price: Mapped[float] = mapped_column(Double)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint("source IN (0, 1, 2)", name="source"),
        CheckConstraint("price >= 0", name="price"),
        # Retention deletes by time; BRIN stays tiny on an append-mostly table (plain b-tree on SQLite).
        Index(None, "at", postgresql_using="brin"),
    )


class FeedCoverageRow(Base):
    """How far each (pool, product, source) feed is known.

    ``latest_at``: the newest observation stored, so rows newer than it can be bulk-copied without a
    conflict check. ``covered_until``: the newest ``received_at`` of a page that carried this series;
    DescribeSpotPriceHistory returns the price in force at the start of every query, so a page that
    carries a pool proves its last price still held when the page was fetched. A row proves its own
    time too, so ``covered_until >= latest_at`` always (cleaning relies on it).
    """

    __tablename__ = "price_feed_coverage"

    pool_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    source: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    latest_at: Mapped[datetime] = mapped_column(UtcDateTime)
    covered_until: Mapped[datetime] = mapped_column(UtcDateTime)


class CleanPriceRow(Base):
    """One point of the clean series: a fixed 5-minute bucket of one pool and product."""

    __tablename__ = "clean_prices"

    pool_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    price: Mapped[float] = mapped_column(Double)
    source: Mapped[str] = mapped_column(String(12))  # measured | interpolated
    method: Mapped[str] = mapped_column(String(12))  # prices.model.Method labels
    confidence: Mapped[float] = mapped_column(Double)
    flags: Mapped[str] = mapped_column(String(64), server_default="")  # comma-separated, '' for none

    __table_args__ = (
        CheckConstraint("source IN ('measured', 'interpolated')", name="source"),
        CheckConstraint(
            "method IN ('observed', 'held', 'averaged', 'linear', 'weighted', 'cross-pool')", name="method"
        ),
        CheckConstraint("confidence > 0 AND confidence <= 1", name="confidence"),
        Index(None, "bucket", postgresql_using="brin"),
        # The 7-day read of a series is an index-only scan (migration 0003).
        PrimaryKeyConstraint("pool_id", "product_id", "bucket", postgresql_include=["price", "confidence"]),
    )


class OnDemandPriceRow(Base):
    """The latest on-demand price of an instance type in a region, the baseline of savings."""

    __tablename__ = "on_demand_prices"

    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    instance_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    price: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class InterruptionRow(Base):
    __tablename__ = "interruptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("pools.id"))
    instance_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # interruption | rebalance | maintenance | stopped
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(16))  # agent | sqs
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)

    pool: Mapped[PoolRow | None] = relationship(lazy="raise")

    __table_args__ = (
        # The agent and SQS may both report one notice, and SQS delivers at least once.
        UniqueConstraint("instance_id", "kind", "at"),
        Index(None, "pool_id", "at"),
    )


class SwitchRow(Base):
    """One move of an agent's primary (the first placement is recorded as a move from nothing)."""

    __tablename__ = "switches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_namespace: Mapped[str] = mapped_column(String(253))
    agent_name: Mapped[str] = mapped_column(String(253))
    switch_name: Mapped[str] = mapped_column(String(253))
    reason: Mapped[str] = mapped_column(String(32))
    from_pool_id: Mapped[int | None] = mapped_column(ForeignKey("pools.id"))
    from_lifecycle: Mapped[str | None] = mapped_column(String(16))
    to_pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id"))
    to_lifecycle: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    launch_seconds: Mapped[float | None] = mapped_column(Double)
    cutover_seconds: Mapped[float | None] = mapped_column(Double)
    downtime_seconds: Mapped[float | None] = mapped_column(Double)
    pre_state: Mapped[dict[str, Any]] = mapped_column(json_document())
    post_state: Mapped[dict[str, Any]] = mapped_column(json_document())

    from_pool: Mapped[PoolRow | None] = relationship(foreign_keys=[from_pool_id], lazy="raise")
    to_pool: Mapped[PoolRow] = relationship(foreign_keys=[to_pool_id], lazy="raise")

    __table_args__ = (
        UniqueConstraint("agent_namespace", "agent_name", "switch_name"),
        Index(None, "agent_namespace", "agent_name", "completed_at"),
        CheckConstraint("to_lifecycle IN ('spot', 'on-demand')", name="to_lifecycle"),
    )


class DecisionRow(Base):
    """One decision cycle of one agent: what the model saw, what it scored, what was chosen and why."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_namespace: Mapped[str] = mapped_column(String(253))
    agent_name: Mapped[str] = mapped_column(String(253))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    inputs: Mapped[dict[str, Any]] = mapped_column(json_document())
    scores: Mapped[dict[str, Any]] = mapped_column(json_document())
    choice: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)

    # One decision per agent and instant: a write retried after an unacknowledged commit is a no-op.
    __table_args__ = (UniqueConstraint("agent_namespace", "agent_name", "at"),)


class ModelVersionRow(Base):
    """A trained scorer. At most one ``active`` and one ``fallback`` per name (partial unique indexes)."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    trained_from: Mapped[datetime | None] = mapped_column(UtcDateTime)
    trained_to: Mapped[datetime | None] = mapped_column(UtcDateTime)
    metrics: Mapped[dict[str, Any]] = mapped_column(json_document())
    artifact: Mapped[bytes | None] = mapped_column(LargeBinary)
    artifact_path: Mapped[str | None] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), server_default="inactive")
    # When it last became active: orders the activation history (rollback picks the next fallback).
    activated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("name", "version"),
        CheckConstraint("status IN ('active', 'fallback', 'inactive')", name="status"),
        CheckConstraint("artifact IS NOT NULL OR artifact_path IS NOT NULL", name="artifact"),
        Index(
            "uq_model_versions_one_active",
            "name",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        Index(
            "uq_model_versions_one_fallback",
            "name",
            unique=True,
            postgresql_where=text("status = 'fallback'"),
            sqlite_where=text("status = 'fallback'"),
        ),
    )
