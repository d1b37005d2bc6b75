"""the consent ledger (issue 23): every consent and refusal a survey call heard, every
do-not-call request, operator change and national-list import, with the words (masked), the
channel, who and when, for an audit

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

Model: ``campaigns/tables.py`` (``ConsentEvent``); rules: ``campaigns/ledger.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consent_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("words", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=True),
        sa.Column("call_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
        sa.CheckConstraint("event IN ('consent', 'refusal', 'dnc', 'dnc_removed')",
                           name=op.f("ck_consent_events_event")),
        sa.CheckConstraint("channel IN ('survey_call', 'operator', 'national_list')",
                           name=op.f("ck_consent_events_channel")),
    )
    op.create_index("ix_consent_events_phone", "consent_events", ["phone", "at"])
    op.create_index("ix_consent_events_at", "consent_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_consent_events_at", table_name="consent_events")
    op.drop_index("ix_consent_events_phone", table_name="consent_events")
    op.drop_table("consent_events")
