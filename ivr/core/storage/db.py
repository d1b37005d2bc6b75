"""Engine and sessions.

``create_engine(url)`` gives an async engine tuned for the IVR: pre-ping (survives a database
restart), bound parameters hidden from error messages and logs (they hold callers' numbers),
JSON stored with ``ensure_ascii=False`` (Chinese stays readable in JSONB), and asyncpg
timeouts so a stuck database raises instead of hanging a call's journal forever.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from ivr.core.storage.errors import StorageError
from ivr.core.storage.postgres import asyncpg_url

SessionFactory = async_sessionmaker[AsyncSession]


def json_dumps(value: Any) -> str:
    """JSON for JSONB columns: UTF-8 text as is; values JSON lacks (datetime, UUID) as str."""
    return json.dumps(value, ensure_ascii=False, default=str)


def create_engine(
    url: str,
    *,
    connect_timeout_s: float = 10.0,
    command_timeout_s: float = 30.0,
    **kwargs: Any,
) -> AsyncEngine:
    """An async engine for ``url`` (any PostgreSQL URL form; the asyncpg driver is used).

    Extra keyword arguments go to SQLAlchemy's ``create_async_engine`` (e.g. ``pool_size``).
    """
    connect_args = {"timeout": connect_timeout_s, "command_timeout": command_timeout_s}
    connect_args.update(kwargs.pop("connect_args", {}))
    options: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_timeout": connect_timeout_s,
        "hide_parameters": True,
        "json_serializer": json_dumps,
        "connect_args": connect_args,
    }
    options.update(kwargs)
    return _create_async_engine(asyncpg_url(url), **options)


def session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions whose objects stay readable after commit (``expire_on_commit=False``)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> str:
    """``SELECT version()``; raises ``StorageError`` when the database does not answer."""
    try:
        async with engine.connect() as conn:
            return str((await conn.execute(text("SELECT version()"))).scalar_one())
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        raise StorageError(f"PostgreSQL does not answer: {type(exc).__name__}: {exc}") from exc


async def extension_version(engine: AsyncEngine, name: str) -> str | None:
    """The installed version of extension ``name`` (e.g. ``vector``), or None."""
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                text("SELECT extversion FROM pg_extension WHERE extname = :name"), {"name": name}
            )
            value = result.scalar_one_or_none()
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        raise StorageError(f"cannot read extension {name!r}: {type(exc).__name__}: {exc}") from exc
    return None if value is None else str(value)


@contextlib.asynccontextmanager
async def scratch_database(url: str, prefix: str = "ivr_scratch") -> AsyncIterator[str]:
    """A new, empty database on the server at ``url``, dropped afterwards: its URL.

    For ``ivr bots test`` and evaluations that write: they never touch the live database.
    """
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = _create_async_engine(asyncpg_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(asyncpg_url(url)).set(database=name).render_as_string(
                hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
