"""The one SQLAlchemy metadata of the project.

Every table lives on ``Base.metadata``. To add tables: write a module with models deriving from
``Base``, add its dotted name to ``MODEL_MODULES`` (so Alembic's autogenerate sees it), and add a
migration in ``ivr/storage/migrations/versions/``.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# stable constraint names, so migrations can refer to them
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MODEL_MODULES: tuple[str, ...] = (
    "ivr.storage.models",
    "dialog.backends.tables",
    "dialog.lifecycle.tables",
    "campaigns.tables",
    "handoff.knowledge.tables",
    "handoff.ticket_tables",
)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def load_models() -> MetaData:
    """Import every module in ``MODEL_MODULES``; return the filled metadata."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata
