"""bot lifecycle: bot_versions (every version of every bot, one published per bot) and
bot_publications (publish / rollback / seed log)

Revision ID: 0003
Revises: 0002
Create Date: 2025-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bot_versions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("bot_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("yaml_text", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), server_default="draft", nullable=False),
        sa.Column("author", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("source", sa.String(300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("tested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("test_summary", postgresql.JSONB(), nullable=True),
        sa.CheckConstraint("state IN ('draft', 'tested', 'published', 'retired')",
                           name=op.f("ck_bot_versions_state")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_bot_versions_version")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_versions")),
        sa.UniqueConstraint("bot_id", "version", name=op.f("uq_bot_versions_bot_id")),
    )
    op.create_index("ix_bot_versions_one_published", "bot_versions", ["bot_id"], unique=True,
                    postgresql_where=sa.text("state = 'published'"))
    op.create_table(
        "bot_publications",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("bot_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("author", sa.String(64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.CheckConstraint("action IN ('seed', 'publish', 'rollback')",
                           name=op.f("ck_bot_publications_action")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_publications")),
    )
    op.create_index("ix_bot_publications_bot_id_at", "bot_publications", ["bot_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_bot_publications_bot_id_at", table_name="bot_publications")
    op.drop_table("bot_publications")
    op.drop_index("ix_bot_versions_one_published", table_name="bot_versions")
    op.drop_table("bot_versions")
