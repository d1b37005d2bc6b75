"""Every table module of the project, for Alembic's autogenerate and the schema test.

The composition root is the one place that knows every package; ``ivr.core.storage`` itself
imports none of them (layers: the ground floor never imports upward).
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from ivr.core.storage.base import Base

MODEL_MODULES: tuple[str, ...] = (
    "ivr.core.storage.models",
    "dialog.backends.tables",
    "dialog.lifecycle.tables",
    "campaigns.tables",
    "handoff.knowledge.tables",
    "handoff.ticket_tables",
)


def load_models() -> MetaData:
    """Import every module in ``MODEL_MODULES``; return the filled metadata."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata
