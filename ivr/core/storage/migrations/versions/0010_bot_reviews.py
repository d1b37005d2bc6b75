"""bot reviews (issue 22): each step of a bot version's review in the workspace (submitted by
its author, wording approved by a team lead, facts approved by a business expert, rejected,
published by a system configurer), with who, in which role and when

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

Model: ``dialog/lifecycle/tables.py`` (``BotReviewRow``); rules: ``dialog/lifecycle/review.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bot_reviews",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("bot_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_reviews")),
        sa.CheckConstraint("step IN ('submit', 'wording', 'facts', 'reject', 'publish')",
                           name=op.f("ck_bot_reviews_step")),
    )
    op.create_index("ix_bot_reviews_bot_id_version", "bot_reviews", ["bot_id", "version"])


def downgrade() -> None:
    op.drop_index("ix_bot_reviews_bot_id_version", table_name="bot_reviews")
    op.drop_table("bot_reviews")
