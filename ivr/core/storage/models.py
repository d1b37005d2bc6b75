"""Tables of the call record. (Other areas add their own model modules; see ``base.py``.)"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Index, String, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from ivr.core.storage.base import Base

TRANSPORTS = ("ari", "agi", "chat")
DIRECTIONS = ("inbound", "outbound")
IN_PROGRESS = "in_progress"
# outcomes the IVR writes today; the column is free text so new areas can add their own
OUTCOMES = (
    IN_PROGRESS, "completed", "transferred", "caller_hangup", "no_input", "invalid_input",
    "failed",
)


class Call(Base):
    """One call through the IVR.

    ``caller_number`` is stored in full (agents and call-backs need it); never log it, show it
    masked (``ivr.core.privacy.mask_number``). ``path`` is the list of steps the call went through:
    ``{"t": seconds since started_at, "step": "menu", "detail": {...}}``, appended atomically.
    """

    __tablename__ = "calls"
    __table_args__ = (
        CheckConstraint(f"transport IN ({', '.join(repr(t) for t in TRANSPORTS)})",
                        name="transport"),
        CheckConstraint("direction IN ('inbound', 'outbound')", name="direction"),
        Index("ix_calls_started_at", "started_at"),
        Index("ix_calls_outcome", "outcome"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    channel_id: Mapped[str] = mapped_column(String(128), index=True)
    transport: Mapped[str] = mapped_column(String(8))
    direction: Mapped[str] = mapped_column(String(8), server_default="inbound")
    caller_number: Mapped[str | None] = mapped_column(String(64))
    dialed_number: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(32), server_default=IN_PROGRESS)
    queue: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    hangup_cause: Mapped[str | None] = mapped_column(String(128))

    def __repr__(self) -> str:  # no caller number here: reprs end up in logs
        return (
            f"Call(id={self.id}, channel_id={self.channel_id!r}, transport={self.transport!r}, "
            f"outcome={self.outcome!r})"
        )
