"""call figures for the inbound analytics (issue 22): each call's line, bot, transfer reason,
where it ended, its turn counts by kind and by dialog state, the recogniser's confidence, and
its queue wait and result, written once when the call ends (``CallRepository.finish``,
``queue_result``) so the analytics aggregate columns, not paths

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

Model: ``ivr/core/storage/models.py`` (``Call``); figures: ``ivr/calls/figures.py``; queries:
``campaigns/inbound.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("line", sa.String(16)), ("bot", sa.String(64)), ("reason", sa.String(32)),
    ("exit_point", sa.String(96)), ("turns", sa.Integer()), ("speech_turns", sa.Integer()),
    ("key_turns", sa.Integer()), ("no_input", sa.Integer()), ("no_match", sa.Integer()),
    ("clarify", sa.Integer()), ("asr_confidence", sa.Float()), ("states", JSONB()),
    ("queue_result", sa.String(16)), ("queue_wait_s", sa.Float()),
)


def upgrade() -> None:
    for name, kind in _COLUMNS:
        op.add_column("calls", sa.Column(name, kind, nullable=True))
    op.create_index("ix_calls_started_line", "calls", ["started_at", "line"])


def downgrade() -> None:
    op.drop_index("ix_calls_started_line", table_name="calls")
    for name, _kind in reversed(_COLUMNS):
        op.drop_column("calls", name)
