"""Alembic environment, async-capable.

``ivr.core.storage.migrate`` runs migrations on a connection it opened itself (passed in
``config.attributes["connection"]``, inside a transaction that holds an advisory lock). Run by
hand (``cfg = alembic_config(url); cfg.attributes["target_metadata"] = load_models();
command.revision(cfg, "msg", autogenerate=True)``) it opens its own async engine from
``sqlalchemy.url``.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from ivr.core.storage.postgres import asyncpg_url

config = context.config
# the filled metadata, for autogenerate only (``ivr.app.tables.load_models()`` passed in
# ``config.attributes["target_metadata"]``); upgrades run the scripts and need none
target_metadata = config.attributes.get("target_metadata")


def _url() -> str:
    x_args = context.get_x_argument(as_dictionary=True)
    url = config.get_main_option("sqlalchemy.url") or x_args.get("url")
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url or pass -x url=postgresql://...")
    return asyncpg_url(url)


def _configure_and_run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=_url(), target_metadata=target_metadata, literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online_async() -> None:
    engine = create_async_engine(_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure_and_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
elif (shared := config.attributes.get("connection")) is not None:
    _configure_and_run(shared)
else:
    asyncio.run(run_online_async())
