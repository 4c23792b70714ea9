"""The clean series' primary key carries price and confidence, so reading a series is an index-only scan.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _primary_key(include: str) -> None:
    # PostgreSQL only: SQLite has no INCLUDE, and its tables are small enough not to need it.
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE clean_prices DROP CONSTRAINT pk_clean_prices,"
        f" ADD CONSTRAINT pk_clean_prices PRIMARY KEY (pool_id, product_id, bucket){include}"
    )


def upgrade() -> None:
    _primary_key(" INCLUDE (price, confidence)")


def downgrade() -> None:
    _primary_key("")
