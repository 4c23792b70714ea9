"""Column types that behave the same on PostgreSQL and SQLite.

SQLite has no time zones and no JSONB; these types hide that, so the schema stays portable and every
timestamp leaving the database is an aware UTC ``datetime``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine


class UtcDateTime(TypeDecorator[datetime]):
    """``timestamptz`` on PostgreSQL, naive-UTC text on SQLite; aware UTC in Python either way.

    Naive datetimes are refused on the way in: a timestamp without a zone is a bug upstream.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_document() -> TypeEngine[Any]:
    """JSONB on PostgreSQL (indexable, compact), JSON text elsewhere."""
    return JSON().with_variant(JSONB(), "postgresql")
