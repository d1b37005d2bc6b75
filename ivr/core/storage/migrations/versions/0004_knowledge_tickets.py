"""knowledge base (pgvector), knowledge proposals/reviews, tickets, callback tasks (issue 5)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Two owners, two sections: the knowledge tables (``handoff/knowledge/tables.py``) and the
tickets / callback tables. ``upgrade`` and ``downgrade`` call each section's functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _knowledge_upgrade()
    _tickets_upgrade()


def downgrade() -> None:
    _tickets_downgrade()
    _knowledge_downgrade()


# ==== knowledge base (handoff/knowledge/tables.py) ===========================================
def _knowledge_upgrade() -> None:
    op.create_table(
        "kb_entries",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("line", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.String(64)), server_default="{}", nullable=False),
        sa.Column("status", sa.String(16), server_default="proposed", nullable=False),
        sa.Column("author", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("source", sa.String(300), nullable=True),
        sa.Column("handoff_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'proposed', 'approved', 'rejected', 'retired')",
            name=op.f("ck_kb_entries_status")),
        sa.CheckConstraint("line IN ('oil', 'gas', 'general')", name=op.f("ck_kb_entries_line")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_kb_entries_version")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_entries")),
        sa.UniqueConstraint("entry_id", "version", name=op.f("uq_kb_entries_entry_id")),
    )
    op.create_index("ix_kb_entries_one_approved", "kb_entries", ["entry_id"], unique=True,
                    postgresql_where=sa.text("status = 'approved'"))
    op.create_index("ix_kb_entries_status", "kb_entries", ["status"])
    op.create_table(
        "kb_passages",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("line", sa.String(16), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.Column("tsv", postgresql.TSVECTOR(), nullable=False),
        sa.Column("embedding", Vector(384), nullable=True),
        sa.ForeignKeyConstraint(["row_id"], ["kb_entries.id"], ondelete="CASCADE",
                                name=op.f("fk_kb_passages_row_id_kb_entries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_passages")),
    )
    op.create_index("ix_kb_passages_embedding_hnsw", "kb_passages", ["embedding"],
                    postgresql_using="hnsw", postgresql_with={"m": 16, "ef_construction": 64},
                    postgresql_ops={"embedding": "vector_cosine_ops"})
    op.create_index("ix_kb_passages_tsv", "kb_passages", ["tsv"], postgresql_using="gin")
    op.create_index("ix_kb_passages_row_id", "kb_passages", ["row_id"])
    op.create_table(
        "kb_feedback",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("handoff_id", sa.String(64), nullable=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.CheckConstraint("verdict IN ('useful', 'wrong')", name=op.f("ck_kb_feedback_verdict")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_feedback")),
    )
    op.create_index("ix_kb_feedback_entry_id", "kb_feedback", ["entry_id"])


def _knowledge_downgrade() -> None:
    op.drop_index("ix_kb_feedback_entry_id", table_name="kb_feedback")
    op.drop_table("kb_feedback")
    op.drop_index("ix_kb_passages_row_id", table_name="kb_passages")
    op.drop_index("ix_kb_passages_tsv", table_name="kb_passages")
    op.drop_index("ix_kb_passages_embedding_hnsw", table_name="kb_passages")
    op.drop_table("kb_passages")
    op.drop_index("ix_kb_entries_status", table_name="kb_entries")
    op.drop_index("ix_kb_entries_one_approved", table_name="kb_entries")
    op.drop_table("kb_entries")


# ==== tickets and callback tasks (owned by the tickets helper) ==============================
# tables in handoff/ticket_tables.py
def _tickets_upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("ticket_no", sa.String(32), nullable=False),
        sa.Column("handoff_id", sa.String(64), nullable=False),
        sa.Column("call_id", sa.UUID(), nullable=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("line", sa.String(16), nullable=False),
        sa.Column("type", sa.String(48), nullable=False),
        sa.Column("account_tail", sa.String(4), server_default="", nullable=False),
        sa.Column("problem", sa.Text(), nullable=False),
        sa.Column("requested_action", sa.Text(), server_default="", nullable=False),
        sa.Column("contact", sa.String(24), server_default="", nullable=False),
        sa.Column("priority", sa.String(16), server_default="normal", nullable=False),
        sa.Column("work_order_no", sa.String(32), nullable=True),
        sa.Column("meta", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.CheckConstraint("line IN ('oil', 'gas', 'general')", name=op.f("ck_tickets_line")),
        sa.CheckConstraint("priority IN ('normal', 'urgent', 'emergency')",
                           name=op.f("ck_tickets_priority")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("ticket_no", name=op.f("uq_tickets_ticket_no")),
        sa.UniqueConstraint("handoff_id", name=op.f("uq_tickets_handoff_id")),
    )
    op.create_index("ix_tickets_call_id", "tickets", ["call_id"])
    op.create_index("ix_tickets_created_at", "tickets", ["created_at"])
    op.create_table(
        "callback_tasks",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.UUID(), nullable=False),
        sa.Column("handoff_id", sa.String(64), nullable=True),
        sa.Column("caller_number", sa.String(32), nullable=False),
        sa.Column("line", sa.String(16), nullable=False),
        sa.Column("queue", sa.String(64), server_default="", nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'done', 'cancelled', 'failed')",
                           name=op.f("ck_callback_tasks_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_tasks")),
        sa.UniqueConstraint("call_id", name=op.f("uq_callback_tasks_call_id")),
    )
    op.create_index("ix_callback_tasks_status", "callback_tasks", ["status", "requested_at"])


def _tickets_downgrade() -> None:
    op.drop_index("ix_callback_tasks_status", table_name="callback_tasks")
    op.drop_table("callback_tasks")
    op.drop_index("ix_tickets_created_at", table_name="tickets")
    op.drop_index("ix_tickets_call_id", table_name="tickets")
    op.drop_table("tickets")
