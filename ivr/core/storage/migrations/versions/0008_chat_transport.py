"""web chat: a chat is a call record with transport ``chat`` (issue 21, the online channel)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

Model: ``ivr/core/storage/models.py`` (``Call``).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_calls_transport"), "calls", type_="check")
    op.create_check_constraint(op.f("ck_calls_transport"), "calls",
                               "transport IN ('ari', 'agi', 'chat')")


def downgrade() -> None:
    op.execute("DELETE FROM calls WHERE transport = 'chat'")
    op.drop_constraint(op.f("ck_calls_transport"), "calls", type_="check")
    op.create_check_constraint(op.f("ck_calls_transport"), "calls",
                               "transport IN ('ari', 'agi')")
