"""Tables of the call record. (Other areas add their own model modules; see ``base.py``.)"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Float, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from ivr.core.storage.base import Base

TRANSPORTS = ("ari", "agi", "chat")
DIRECTIONS = ("inbound", "outbound")
QUEUE_RESULTS = ("answered", "abandoned")
# the columns a call's end writes for the analytics (``CallRepository.finish(figures=...)``)
FIGURES = frozenset({"line", "bot", "reason", "exit_point", "turns", "speech_turns", "key_turns",
                     "no_input", "no_match", "clarify", "asr_confidence", "states"})
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
        Index("ix_calls_started_line", "started_at", "line"),
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
    # the call's figures, written when it ends (``ivr.calls.figures``; analytics read these)
    line: Mapped[str | None] = mapped_column(String(16))
    bot: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(32))  # why it went to an agent
    exit_point: Mapped[str | None] = mapped_column(String(96))  # the dialog state at the end
    turns: Mapped[int | None] = mapped_column(Integer)
    speech_turns: Mapped[int | None] = mapped_column(Integer)
    key_turns: Mapped[int | None] = mapped_column(Integer)
    no_input: Mapped[int | None] = mapped_column(Integer)
    no_match: Mapped[int | None] = mapped_column(Integer)
    clarify: Mapped[int | None] = mapped_column(Integer)
    asr_confidence: Mapped[float | None] = mapped_column(Float)  # mean over its utterances
    # per dialog state ("route", "line_menu", a bot id): {"turns", "no_match", "clarify", ...}
    # none_as_null: a call without states is SQL NULL, not a JSON null (which jsonb_each refuses)
    states: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    queue_result: Mapped[str | None] = mapped_column(String(16))  # answered | abandoned
    queue_wait_s: Mapped[float | None] = mapped_column(Float)

    def __repr__(self) -> str:  # no caller number here: reprs end up in logs
        return (
            f"Call(id={self.id}, channel_id={self.channel_id!r}, transport={self.transport!r}, "
            f"outcome={self.outcome!r})"
        )
