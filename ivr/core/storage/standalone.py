"""The database for a command-line tool (``ivr kb``, ``ivr bots``, ``ivr campaigns``): the
configured server (DATABASE_URL) or the embedded PostgreSQL, migrated to head, stopped again
afterwards when this process started it. A running ``ivr up`` shares the same data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ivr.core.config import Settings
from ivr.core.storage.db import SessionFactory


@contextlib.asynccontextmanager
async def migrated_url(settings: Settings) -> AsyncIterator[str]:
    """The database URL, after the migrations have run."""
    from ivr.core.storage.migrate import upgrade
    from ivr.core.storage.postgres import EmbeddedPostgres, database_url

    pg: EmbeddedPostgres | None = None
    url = database_url(settings)
    if url is None:
        pg = EmbeddedPostgres(settings.database)
        url = await asyncio.to_thread(pg.start)
    try:
        await upgrade(url)
        yield url
    finally:
        if pg is not None:
            await asyncio.to_thread(pg.stop)


@contextlib.asynccontextmanager
async def db_sessions(settings: Settings) -> AsyncIterator[SessionFactory]:
    """Sessions on the migrated database (the engine is disposed afterwards)."""
    from ivr.core.storage.db import create_engine, session_factory

    async with migrated_url(settings) as url:
        engine = create_engine(url)
        try:
            yield session_factory(engine)
        finally:
            await engine.dispose()
