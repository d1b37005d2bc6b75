"""outbound survey campaigns: campaigns, contacts, attempts, answers, do-not-call (issue 7)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

Models: ``campaigns/tables.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON_EMPTY = sa.text("'{}'::jsonb")


def _ts(name: str, *, now: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=not now,
                     server_default=sa.func.now() if now else None)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("survey", sa.String(64), nullable=False),
        sa.Column("business_line", sa.String(8), server_default="general", nullable=False),
        sa.Column("status", sa.String(16), server_default="draft", nullable=False),
        sa.Column("windows", postgresql.JSONB(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="3", nullable=False),
        sa.Column("retry_s", postgresql.JSONB(), nullable=False),
        sa.Column("daily_cap", sa.Integer(), server_default="1", nullable=False),
        sa.Column("max_channels", sa.Integer(), server_default="10", nullable=False),
        sa.Column("calls_per_second", sa.Float(), server_default="1.0", nullable=False),
        sa.Column("sample_rate", sa.Float(), server_default="1.0", nullable=False),
        sa.Column("machine_action", sa.String(16), server_default="hangup", nullable=False),
        sa.Column("settings", postgresql.JSONB(), server_default=_JSON_EMPTY, nullable=False),
        _ts("created_at", now=True),
        _ts("updated_at", now=True),
        sa.CheckConstraint(
            "status IN ('draft', 'running', 'paused', 'stopped', 'finished')",
            name=op.f("ck_campaigns_status")),
        sa.CheckConstraint("business_line IN ('oil', 'gas', 'general')",
                           name=op.f("ck_campaigns_business_line")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_table(
        "campaign_contacts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=True),
        sa.Column("fields", postgresql.JSONB(), server_default=_JSON_EMPTY, nullable=False),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _ts("next_at", now=True),
        sa.Column("source", sa.String(16), server_default="import", nullable=False),
        sa.Column("orig_call_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("bot", sa.String(64), nullable=True),
        sa.Column("agent", sa.String(64), nullable=True),
        _ts("created_at", now=True),
        sa.CheckConstraint(
            "status IN ('pending', 'dialing', 'completed', 'refused', 'dnc', 'exhausted', "
            "'skipped')", name=op.f("ck_campaign_contacts_status")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE",
                                name=op.f("fk_campaign_contacts_campaign_id_campaigns")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_contacts")),
    )
    op.create_index("uq_campaign_contacts_phone", "campaign_contacts",
                    ["campaign_id", "phone"], unique=True)
    op.create_index("ix_campaign_contacts_due", "campaign_contacts",
                    ["campaign_id", "status", "next_at"])
    op.create_index("uq_campaign_contacts_orig_call", "campaign_contacts",
                    ["campaign_id", "orig_call_id"], unique=True,
                    postgresql_where=sa.text("orig_call_id IS NOT NULL"))
    op.create_table(
        "campaign_attempts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("call_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("channel_id", sa.String(128), nullable=True),
        sa.Column("outcome", sa.String(16), server_default="dialing", nullable=False),
        sa.Column("amd_status", sa.String(32), nullable=True),
        sa.Column("cause", sa.String(64), nullable=True),
        _ts("started_at", now=True),
        _ts("answered_at"),
        _ts("ended_at"),
        sa.CheckConstraint(
            "outcome IN ('dialing', 'answered', 'busy', 'no_answer', 'failed', 'machine')",
            name=op.f("ck_campaign_attempts_outcome")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE",
                                name=op.f("fk_campaign_attempts_campaign_id_campaigns")),
        sa.ForeignKeyConstraint(["contact_id"], ["campaign_contacts.id"], ondelete="CASCADE",
                                name=op.f("fk_campaign_attempts_contact_id_campaign_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_attempts")),
    )
    op.create_index("ix_campaign_attempts_contact", "campaign_attempts",
                    ["contact_id", "started_at"])
    op.create_index("ix_campaign_attempts_campaign", "campaign_attempts",
                    ["campaign_id", "started_at"])
    op.create_table(
        "campaign_answers",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("call_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("question", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("via", sa.String(8), nullable=True),
        _ts("answered_at", now=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE",
                                name=op.f("fk_campaign_answers_campaign_id_campaigns")),
        sa.ForeignKeyConstraint(["contact_id"], ["campaign_contacts.id"], ondelete="CASCADE",
                                name=op.f("fk_campaign_answers_contact_id_campaign_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_answers")),
    )
    op.create_index("ix_campaign_answers_campaign", "campaign_answers",
                    ["campaign_id", "answered_at"])
    op.create_index("ix_campaign_answers_contact", "campaign_answers", ["contact_id"])
    op.create_table(
        "do_not_call",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=True),
        sa.Column("source_campaign_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
        _ts("created_at", now=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE",
                                name=op.f("fk_do_not_call_campaign_id_campaigns")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_do_not_call")),
    )
    op.create_index("uq_do_not_call_phone_campaign", "do_not_call",
                    ["phone", sa.text("coalesce(campaign_id, 0)")], unique=True)
    op.create_index("ix_do_not_call_source", "do_not_call", ["source_campaign_id"])


def downgrade() -> None:
    for table in ("do_not_call", "campaign_answers", "campaign_attempts", "campaign_contacts",
                  "campaigns"):
        op.drop_table(table)
