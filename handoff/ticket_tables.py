"""Tables of submitted tickets and callback tasks (migration ``0004_knowledge_tickets``,
tickets part).

``tickets``: one row per handoff (``handoff_id`` unique: a resubmitted form updates the same
ticket and keeps its number), linked to the call (``call_id``) and to the demo back end's work
order (``work_order_no``). ``callback_tasks``: a caller who chose a callback instead of waiting
in an agent queue (one per call).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from ivr.core.storage.base import Base

CALLBACK_STATUSES = ("pending", "done", "cancelled", "failed")


class TicketRow(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint("line IN ('oil', 'gas', 'general')", name="line"),
        CheckConstraint("priority IN ('normal', 'urgent', 'emergency')", name="priority"),
        Index("ix_tickets_call_id", "call_id"),
        Index("ix_tickets_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    ticket_no: Mapped[str] = mapped_column(String(32), unique=True)
    handoff_id: Mapped[str] = mapped_column(String(64), unique=True)
    call_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    agent: Mapped[str] = mapped_column(String(64))
    line: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(48))
    account_tail: Mapped[str] = mapped_column(String(4), server_default="")
    problem: Mapped[str] = mapped_column(Text)
    requested_action: Mapped[str] = mapped_column(Text, server_default="")
    contact: Mapped[str] = mapped_column(String(24), server_default="")
    priority: Mapped[str] = mapped_column(String(16), server_default="normal")
    work_order_no: Mapped[str | None] = mapped_column(String(32))
    meta: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


class CallbackTaskRow(Base):
    __tablename__ = "callback_tasks"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'done', 'cancelled', 'failed')", name="status"),
        Index("ix_callback_tasks_status", "status", "requested_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    call_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    handoff_id: Mapped[str | None] = mapped_column(String(64))
    caller_number: Mapped[str] = mapped_column(String(32))
    line: Mapped[str] = mapped_column(String(16))
    queue: Mapped[str] = mapped_column(String(64), server_default="")
    reason: Mapped[str] = mapped_column(String(32))  # no_agent | wait_limit
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                   server_default=func.now())
    note: Mapped[str | None] = mapped_column(Text)
    # worked from the agent desktop (migration 0006): the agent who claimed it, dial attempts
    agent: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dials: Mapped[int] = mapped_column(Integer, server_default="0")
    last_dial_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
