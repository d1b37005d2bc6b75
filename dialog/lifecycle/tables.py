"""Tables of the bot lifecycle (migration ``0003_bot_versions``).

``bot_versions`` keeps every version of every bot (the YAML text as imported, its sha256, its
state and test summary). At most one version per bot is ``published`` (a partial unique index
enforces it); that is the version calls get. ``bot_publications`` logs each publish, rollback
and seed; its highest id is the cheap fingerprint servers poll to notice another process's
publish. ``bot_reviews`` (migration ``0010_bot_reviews``) records each step of a version's
review in the workspace: submitted, wording approved, facts approved, rejected, published.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ivr.core.storage.base import Base

DRAFT, TESTED, PUBLISHED, RETIRED = "draft", "tested", "published", "retired"
STATES = (DRAFT, TESTED, PUBLISHED, RETIRED)
PUBLICATION_ACTIONS = ("seed", "publish", "rollback")


class BotVersionRow(Base):
    __tablename__ = "bot_versions"
    __table_args__ = (
        CheckConstraint("state IN ('draft', 'tested', 'published', 'retired')", name="state"),
        CheckConstraint("version >= 1", name="version"),
        UniqueConstraint("bot_id", "version"),
        Index("ix_bot_versions_one_published", "bot_id", unique=True,
              postgresql_where=text("state = 'published'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    bot_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    yaml_text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), server_default=DRAFT)
    author: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(300))  # the file it was imported from
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    tested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    test_summary: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    def __repr__(self) -> str:
        return f"BotVersionRow({self.bot_id!r} v{self.version}, {self.state})"


class BotPublicationRow(Base):
    __tablename__ = "bot_publications"
    __table_args__ = (
        CheckConstraint("action IN ('seed', 'publish', 'rollback')", name="action"),
        Index("ix_bot_publications_bot_id_at", "bot_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    bot_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    previous_version: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    author: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# the review workflow's steps (dialog/lifecycle/review.py; migration 0010_bot_reviews)
REVIEW_STEPS = ("submit", "wording", "facts", "reject", "publish")


class BotReviewRow(Base):
    """One step of a version's review: who took it, in which role, when, and what they said."""

    __tablename__ = "bot_reviews"
    __table_args__ = (
        CheckConstraint("step IN ('submit', 'wording', 'facts', 'reject', 'publish')",
                        name="step"),
        Index("ix_bot_reviews_bot_id_version", "bot_id", "version"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    bot_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
