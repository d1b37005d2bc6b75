"""verification lockout: failed PIN / ID-tail verifications per card and per gas account,
across calls, keyed by a SHA-256 of the number (security issue, item 4)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26

Model: ``dialog/backends/tables.py`` (``VerificationLockRow``); policy:
``dialog/backends/locks.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "verification_locks",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("first_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.CheckConstraint("kind IN ('fuel_card', 'gas_account')",
                           name=op.f("ck_verification_locks_kind")),
        sa.PrimaryKeyConstraint("kind", "key_hash", name=op.f("pk_verification_locks")),
    )


def downgrade() -> None:
    op.drop_table("verification_locks")
