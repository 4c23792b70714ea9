"""Price history: pools, products, raw observations, feed coverage, the clean series, on-demand prices.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
SMALL_ID = sa.SmallInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_type", sa.String(length=64), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pools")),
        sa.UniqueConstraint("instance_type", "zone", name=op.f("uq_pools_instance_type_zone")),
    )
    op.create_index(op.f("ix_pools_region_instance_type"), "pools", ["region", "instance_type"])
    op.create_table(
        "products",
        sa.Column("id", SMALL_ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("name", name=op.f("uq_products_name")),
    )
    op.create_table(
        "price_observations",
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.SmallInteger(), nullable=False),
        sa.Column("source", sa.SmallInteger(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.CheckConstraint("price >= 0", name=op.f("ck_price_observations_price")),
        sa.CheckConstraint("source IN (0, 1, 2)", name=op.f("ck_price_observations_source")),
        sa.PrimaryKeyConstraint("pool_id", "product_id", "source", "at", name=op.f("pk_price_observations")),
    )
    op.create_index(op.f("ix_price_observations_at"), "price_observations", ["at"], postgresql_using="brin")
    op.create_table(
        "price_feed_coverage",
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.SmallInteger(), nullable=False),
        sa.Column("source", sa.SmallInteger(), nullable=False),
        sa.Column("latest_at", TS, nullable=False),
        sa.Column("covered_until", TS, nullable=False),
        sa.PrimaryKeyConstraint("pool_id", "product_id", "source", name=op.f("pk_price_feed_coverage")),
    )
    op.create_table(
        "clean_prices",
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.SmallInteger(), nullable=False),
        sa.Column("bucket", TS, nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("method", sa.String(length=12), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("flags", sa.String(length=64), server_default="", nullable=False),
        sa.CheckConstraint(
            "method IN ('observed', 'held', 'averaged', 'linear', 'weighted', 'cross-pool')",
            name=op.f("ck_clean_prices_method"),
        ),
        sa.CheckConstraint("source IN ('measured', 'interpolated')", name=op.f("ck_clean_prices_source")),
        sa.CheckConstraint("confidence > 0 AND confidence <= 1", name=op.f("ck_clean_prices_confidence")),
        sa.PrimaryKeyConstraint("pool_id", "product_id", "bucket", name=op.f("pk_clean_prices")),
    )
    op.create_index(op.f("ix_clean_prices_bucket"), "clean_prices", ["bucket"], postgresql_using="brin")
    op.create_table(
        "on_demand_prices",
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("instance_type", sa.String(length=64), nullable=False),
        sa.Column("product_id", SMALL_ID, nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_on_demand_prices_product_id_products")
        ),
        sa.PrimaryKeyConstraint("region", "instance_type", "product_id", name=op.f("pk_on_demand_prices")),
    )


def downgrade() -> None:
    op.drop_table("on_demand_prices")
    op.drop_index(op.f("ix_clean_prices_bucket"), table_name="clean_prices", postgresql_using="brin")
    op.drop_table("clean_prices")
    op.drop_table("price_feed_coverage")
    op.drop_index(op.f("ix_price_observations_at"), table_name="price_observations", postgresql_using="brin")
    op.drop_table("price_observations")
    op.drop_table("products")
    op.drop_index(op.f("ix_pools_region_instance_type"), table_name="pools")
    op.drop_table("pools")
