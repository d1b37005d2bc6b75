"""The one SQLAlchemy metadata of the project.

Every table lives on ``Base.metadata``. To add tables: write a module with models deriving from
``Base``, add its dotted name to ``ivr.app.tables.MODEL_MODULES`` (the composition root knows every
package; this ground floor knows none of them), and add a migration in
``ivr/core/storage/migrations/versions/``.
"""

from __future__ import annotations

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


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
