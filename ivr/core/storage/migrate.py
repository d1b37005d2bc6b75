"""Schema migrations, run in code: ``await upgrade(url)`` at start; no alembic.ini needed.

The Alembic scripts are packaged in ``ivr/core/storage/migrations``. ``upgrade`` opens one async
connection, takes a PostgreSQL advisory lock (so two servers starting together do not race)
and runs Alembic's sync command API on that connection (``run_sync``, the async "connection
sharing" pattern); the whole upgrade is one transaction.

To write a new migration by hand::

    from alembic import command
    from ivr.core.storage.migrate import alembic_config
    command.revision(alembic_config(url), "add kb tables", autogenerate=True)
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from ivr.core.storage.errors import StorageError
from ivr.core.storage.postgres import asyncpg_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key: "956100" + "01", any constant shared by all our processes
_LOCK_KEY = 95610001


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` for the packaged scripts (and ``url``, for use outside ``upgrade``)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolation: a literal % in a password must be doubled
        cfg.set_main_option("sqlalchemy.url", asyncpg_url(url).replace("%", "%%"))
    return cfg


def head() -> str | None:
    """The newest revision in the packaged scripts."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _engine(url: str) -> AsyncEngine:
    return create_async_engine(asyncpg_url(url), poolclass=NullPool, hide_parameters=True)


def _upgrade_on(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; raises ``StorageError`` saying why it could not."""
    engine = _engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            await conn.run_sync(_upgrade_on, revision)
    except (SQLAlchemyError, CommandError, OSError, TimeoutError) as exc:
        raise StorageError(
            f"database migration to {revision} failed: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        await engine.dispose()


def _current_on(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current(url: str) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    engine = _engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current_on)
    except (SQLAlchemyError, CommandError, OSError, TimeoutError) as exc:
        raise StorageError(
            f"cannot read the migration revision: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        await engine.dispose()
