"""Tables of the agent-assist knowledge base (migration ``0004_knowledge_tickets``, knowledge part).

``kb_entries`` keeps every version of every entry: a proposal is a new row (the next version of
its ``entry_id``), approval and rejection change that row's status, never its text. At most one
version per entry is ``approved`` (a partial unique index); approving a newer one retires it.

``kb_passages`` holds the searchable chunks of the approved versions only (written on approval,
deleted when the version is retired), each with its e5 embedding (``vector(384)``, HNSW index,
cosine distance) and its jieba tokens (``tokens``, space separated; ``tsv`` is
``to_tsvector('simple', tokens)``, GIN index) for keyword search. Search therefore never needs a
status filter. ``kb_feedback`` records an agent's useful/wrong mark on a suggestion.
"""

from __future__ import annotations

from datetime import datetime

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from ivr.core.storage.base import Base

EMBEDDING_DIM = 384
DRAFT, PROPOSED, APPROVED, REJECTED, RETIRED = (
    "draft", "proposed", "approved", "rejected", "retired")
STATUSES = (DRAFT, PROPOSED, APPROVED, REJECTED, RETIRED)
VERDICTS = ("useful", "wrong")


class KbEntryRow(Base):
    __tablename__ = "kb_entries"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'proposed', 'approved', 'rejected', 'retired')",
                        name="status"),
        CheckConstraint("line IN ('oil', 'gas', 'general')", name="line"),
        CheckConstraint("version >= 1", name="version"),
        UniqueConstraint("entry_id", "version"),
        Index("ix_kb_entries_one_approved", "entry_id", unique=True,
              postgresql_where=text("status = 'approved'")),
        Index("ix_kb_entries_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    line: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    status: Mapped[str] = mapped_column(String(16), server_default=PROPOSED)
    author: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)  # the author's why (a proposal's comment)
    reviewer: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)  # the reviewer's why
    source: Mapped[str | None] = mapped_column(String(300))  # import file:line, or "desktop"
    handoff_id: Mapped[str | None] = mapped_column(String(64))  # the call that prompted it
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class KbPassageRow(Base):
    __tablename__ = "kb_passages"
    __table_args__ = (
        Index("ix_kb_passages_embedding_hnsw", "embedding", postgresql_using="hnsw",
              postgresql_with={"m": 16, "ef_construction": 64},
              postgresql_ops={"embedding": "vector_cosine_ops"}),
        Index("ix_kb_passages_tsv", "tsv", postgresql_using="gin"),
        Index("ix_kb_passages_row_id", "row_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    row_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("kb_entries.id", ondelete="CASCADE"))
    entry_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    line: Mapped[str] = mapped_column(String(16))
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    tokens: Mapped[str] = mapped_column(Text)
    tsv: Mapped[str] = mapped_column(TSVECTOR)
    embedding: Mapped[list[float] | None] = mapped_column(Vector(EMBEDDING_DIM))


class KbFeedbackRow(Base):
    __tablename__ = "kb_feedback"
    __table_args__ = (
        CheckConstraint("verdict IN ('useful', 'wrong')", name="verdict"),
        Index("ix_kb_feedback_entry_id", "entry_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int | None] = mapped_column(Integer)
    handoff_id: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
