"""calls table; pgvector extension

Revision ID: 0001
Revises:
Create Date: 2025-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # needs superuser (pgvector is not a trusted extension) unless it already exists
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "calls",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("channel_id", sa.String(128), nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("direction", sa.String(8), server_default="inbound", nullable=False),
        sa.Column("caller_number", sa.String(64), nullable=True),
        sa.Column("dialed_number", sa.String(64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(32), server_default="in_progress", nullable=False),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("path", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"),
                  nullable=False),
        sa.Column("hangup_cause", sa.String(128), nullable=True),
        sa.CheckConstraint("transport IN ('ari', 'agi')", name=op.f("ck_calls_transport")),
        sa.CheckConstraint("direction IN ('inbound', 'outbound')",
                           name=op.f("ck_calls_direction")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    op.create_index(op.f("ix_calls_channel_id"), "calls", ["channel_id"])
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_index("ix_calls_outcome", "calls", ["outcome"])


def downgrade() -> None:
    # the vector extension stays: other tables (knowledge base) may use it
    op.drop_index("ix_calls_outcome", table_name="calls")
    op.drop_index("ix_calls_started_at", table_name="calls")
    op.drop_index(op.f("ix_calls_channel_id"), table_name="calls")
    op.drop_table("calls")
