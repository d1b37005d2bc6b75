"""Storage fixtures shared by the test files: one embedded PostgreSQL (migrated) and one
embedded Redis per test session, both in pytest's temporary directory.

Load them from tests/conftest.py with ``pytest_plugins = ["tests.fixtures_storage"]``.

- ``embedded_pg``: the ``EmbeddedPostgres`` (started); ``pg_url``: its asyncpg URL, migrated
  to head; ``pg_engine``: an ``AsyncEngine`` on it; ``call_repo``: a ``CallRepository``.
- ``scratch_sessions``: a session factory on a new, migrated database of its own (per test).
- ``embedded_redis``: the ``EmbeddedRedis`` (started); ``redis_url``: ``unix:///.../redis.sock``.

All are session-scoped and run on the session event loop (``loop_scope="session"``), so tests
using them must run on the session loop too (``asyncio_default_test_loop_scope = "session"``
in pyproject, or ``pytest.mark.asyncio(loop_scope="session")``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.core.config import DatabaseSettings, RedisSettings
from ivr.core.storage.calls import CallRepository
from ivr.core.storage.db import SessionFactory, create_engine, scratch_database, session_factory
from ivr.core.storage.migrate import upgrade
from ivr.core.storage.postgres import EmbeddedPostgres
from ivr.core.storage.redis_server import EmbeddedRedis

# start times of this session's servers, for reports (seconds)
TIMINGS: dict[str, float] = {}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def embedded_pg(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(DatabaseSettings(embedded_dir=tmp_path_factory.mktemp("pg") / "pgdata"))
    t = time.monotonic()
    await asyncio.to_thread(pg.start)
    TIMINGS["postgres_first_start_s"] = time.monotonic() - t
    yield pg
    await asyncio.to_thread(pg.stop)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pg_url(embedded_pg: EmbeddedPostgres) -> str:
    url = embedded_pg.url
    assert url is not None
    await upgrade(url)
    return url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pg_engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_url)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def call_repo(pg_engine: AsyncEngine) -> CallRepository:
    return CallRepository(session_factory(pg_engine))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedRedis]:
    server = EmbeddedRedis(RedisSettings(embedded_dir=tmp_path_factory.mktemp("redis")))
    t = time.monotonic()
    await server.start()
    TIMINGS["redis_start_s"] = time.monotonic() - t
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def redis_url(embedded_redis: EmbeddedRedis) -> str:
    return embedded_redis.url


@pytest_asyncio.fixture(loop_scope="session")
async def scratch_sessions(pg_url: str) -> AsyncIterator[SessionFactory]:
    """A new database migrated to head on the session's PostgreSQL, for one test (dropped
    after): tests that fill tables others count (analytics' months of calls, bot drafts)."""
    async with scratch_database(pg_url, "ivr_test_scratch") as url:
        await upgrade(url)
        engine = create_engine(url)
        yield session_factory(engine)
        await engine.dispose()
