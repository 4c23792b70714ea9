"""Operations history: interruptions, switches, decisions and the model registry.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "interruptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=True),
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["pool_id"], ["pools.id"], name=op.f("fk_interruptions_pool_id_pools")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interruptions")),
        sa.UniqueConstraint("instance_id", "kind", "at", name=op.f("uq_interruptions_instance_id_kind_at")),
    )
    op.create_index(op.f("ix_interruptions_pool_id_at"), "interruptions", ["pool_id", "at"])
    op.create_table(
        "switches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_namespace", sa.String(length=253), nullable=False),
        sa.Column("agent_name", sa.String(length=253), nullable=False),
        sa.Column("switch_name", sa.String(length=253), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("from_pool_id", sa.Integer(), nullable=True),
        sa.Column("from_lifecycle", sa.String(length=16), nullable=True),
        sa.Column("to_pool_id", sa.Integer(), nullable=False),
        sa.Column("to_lifecycle", sa.String(length=16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("launch_seconds", sa.Double(), nullable=True),
        sa.Column("cutover_seconds", sa.Double(), nullable=True),
        sa.Column("downtime_seconds", sa.Double(), nullable=True),
        sa.Column("pre_state", JSON_DOC, nullable=False),
        sa.Column("post_state", JSON_DOC, nullable=False),
        sa.CheckConstraint("to_lifecycle IN ('spot', 'on-demand')", name=op.f("ck_switches_to_lifecycle")),
        sa.ForeignKeyConstraint(["from_pool_id"], ["pools.id"], name=op.f("fk_switches_from_pool_id_pools")),
        sa.ForeignKeyConstraint(["to_pool_id"], ["pools.id"], name=op.f("fk_switches_to_pool_id_pools")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_switches")),
        sa.UniqueConstraint(
            "agent_namespace",
            "agent_name",
            "switch_name",
            name=op.f("uq_switches_agent_namespace_agent_name_switch_name"),
        ),
    )
    op.create_index(
        op.f("ix_switches_agent_namespace_agent_name_completed_at"),
        "switches",
        ["agent_namespace", "agent_name", "completed_at"],
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_namespace", sa.String(length=253), nullable=False),
        sa.Column("agent_name", sa.String(length=253), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("model_name", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("inputs", JSON_DOC, nullable=False),
        sa.Column("scores", JSON_DOC, nullable=False),
        sa.Column("choice", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint(
            "agent_namespace", "agent_name", "at", name=op.f("uq_decisions_agent_namespace_agent_name_at")
        ),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("trained_from", TS, nullable=True),
        sa.Column("trained_to", TS, nullable=True),
        sa.Column("metrics", JSON_DOC, nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=True),
        sa.Column("artifact_path", sa.String(length=1024), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="inactive", nullable=False),
        sa.Column("activated_at", TS, nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'fallback', 'inactive')", name=op.f("ck_model_versions_status")
        ),
        sa.CheckConstraint(
            "artifact IS NOT NULL OR artifact_path IS NOT NULL", name=op.f("ck_model_versions_artifact")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_model_versions_name_version")),
    )
    for status in ("active", "fallback"):
        op.create_index(
            f"uq_model_versions_one_{status}",
            "model_versions",
            ["name"],
            unique=True,
            postgresql_where=sa.text(f"status = '{status}'"),
            sqlite_where=sa.text(f"status = '{status}'"),
        )


def downgrade() -> None:
    for status in ("fallback", "active"):
        op.drop_index(f"uq_model_versions_one_{status}", table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_table("decisions")
    op.drop_index(op.f("ix_switches_agent_namespace_agent_name_completed_at"), table_name="switches")
    op.drop_table("switches")
    op.drop_index(op.f("ix_interruptions_pool_id_at"), table_name="interruptions")
    op.drop_table("interruptions")
