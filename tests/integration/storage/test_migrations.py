"""Alembic: one head, upgrade from empty, the schema equals the models, the latest downgrade works."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from spot_operator.storage.db import make_engine
from spot_operator.storage.migrate import current_revision, downgrade, heads, upgrade, upgrade_to_head
from spot_operator.storage.models import Base

pytestmark = pytest.mark.postgres

PRICE_TABLES = {
    "pools",
    "products",
    "price_observations",
    "price_feed_coverage",
    "clean_prices",
    "on_demand_prices",
}
OPERATIONS_TABLES = {"interruptions", "switches", "decisions", "model_versions"}


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def differences(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(
                compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
            )
    finally:
        engine.dispose()


def primary_key_include(url: str, table: str) -> list[str]:
    """The non-key columns the table's primary key index carries (INCLUDE)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT a.attname FROM pg_index i"
                    " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true"
                    " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
                    " WHERE i.indrelid = CAST(:table AS regclass) AND i.indisprimary"
                    " AND k.n > i.indnkeyatts ORDER BY k.n"
                ),
                {"table": table},
            )
            return [str(name) for (name,) in rows]
    finally:
        engine.dispose()


def test_there_is_one_head() -> None:
    assert len(heads()) == 1


def test_upgrade_from_empty_builds_exactly_the_models(empty_database_url: str) -> None:
    assert tables(empty_database_url) == set()
    upgrade_to_head(empty_database_url)
    assert current_revision(empty_database_url) == heads()[0]
    assert tables(empty_database_url) == PRICE_TABLES | OPERATIONS_TABLES
    assert differences(empty_database_url) == []


def test_upgrade_to_head_twice_is_harmless(empty_database_url: str) -> None:
    upgrade_to_head(empty_database_url)
    upgrade_to_head(empty_database_url)
    assert current_revision(empty_database_url) == heads()[0]


def test_the_latest_migration_downgrades_and_upgrades_again(empty_database_url: str) -> None:
    upgrade_to_head(empty_database_url)
    downgrade(empty_database_url, "-1")
    assert current_revision(empty_database_url) == "0002"
    assert primary_key_include(empty_database_url, "clean_prices") == []
    upgrade(empty_database_url, "head")
    assert primary_key_include(empty_database_url, "clean_prices") == ["price", "confidence"]
    assert differences(empty_database_url) == []
    downgrade(empty_database_url, "0001")
    assert tables(empty_database_url) == PRICE_TABLES
    upgrade(empty_database_url, "head")
    assert tables(empty_database_url) == PRICE_TABLES | OPERATIONS_TABLES


def test_downgrade_to_base_leaves_nothing(empty_database_url: str) -> None:
    upgrade_to_head(empty_database_url)
    downgrade(empty_database_url, "base")
    assert current_revision(empty_database_url) is None
    assert tables(empty_database_url) == set()
