"""carrier outcomes (issue 23): survey attempts ended by the network's announcements (vacant,
suspended, unreachable), contacts whose number is invalid, and number_flags: numbers no campaign
dials for 90 days because the network said they do not exist or are suspended

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

Model: ``campaigns/tables.py`` (``Attempt``, ``Contact``, ``NumberFlag``); rules:
``campaigns/carrier.py`` and ``campaigns/repo.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OUTCOMES_OLD = "'dialing', 'answered', 'busy', 'no_answer', 'failed', 'machine'"
_OUTCOMES = _OUTCOMES_OLD + ", 'vacant', 'suspended', 'unreachable'"
_STATUSES_OLD = ("'pending', 'dialing', 'completed', 'refused', 'dnc', 'exhausted', "
                 "'skipped'")
_STATUSES = _STATUSES_OLD + ", 'invalid'"


def _checks(outcomes: str, statuses: str) -> None:
    op.drop_constraint("ck_campaign_attempts_outcome", "campaign_attempts", type_="check")
    op.create_check_constraint("ck_campaign_attempts_outcome", "campaign_attempts",
                               f"outcome IN ({outcomes})")
    op.drop_constraint("ck_campaign_contacts_status", "campaign_contacts", type_="check")
    op.create_check_constraint("ck_campaign_contacts_status", "campaign_contacts",
                               f"status IN ({statuses})")


def upgrade() -> None:
    _checks(_OUTCOMES, _STATUSES)
    op.create_table(
        "number_flags",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=True),
        sa.Column("flagged_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_flags")),
        sa.CheckConstraint("reason IN ('vacant', 'suspended')",
                           name=op.f("ck_number_flags_reason")),
    )
    op.create_index("uq_number_flags_phone", "number_flags", ["phone"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_number_flags_phone", table_name="number_flags")
    op.drop_table("number_flags")
    op.execute("UPDATE campaign_attempts SET outcome = 'failed' "
               "WHERE outcome IN ('vacant', 'suspended', 'unreachable')")
    op.execute("UPDATE campaign_contacts SET status = 'exhausted' WHERE status = 'invalid'")
    _checks(_OUTCOMES_OLD, _STATUSES_OLD)
