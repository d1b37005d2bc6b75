"""callback tasks worked from the agent desktop: who claimed a task, when, dial attempts, and
when and how it was closed (issue 5)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

Model: ``handoff/ticket_tables.py`` (``CallbackTaskRow``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("callback_tasks", sa.Column("agent", sa.String(64)))
    op.add_column("callback_tasks", sa.Column("claimed_at", sa.DateTime(timezone=True)))
    op.add_column("callback_tasks", sa.Column("closed_at", sa.DateTime(timezone=True)))
    op.add_column("callback_tasks", sa.Column("dials", sa.Integer(), nullable=False,
                                              server_default="0"))
    op.add_column("callback_tasks", sa.Column("last_dial_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    for column in ("last_dial_at", "dials", "closed_at", "claimed_at", "agent"):
        op.drop_column("callback_tasks", column)
