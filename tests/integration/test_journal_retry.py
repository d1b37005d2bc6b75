"""PostgreSQL goes away mid-call (the ``postgres`` drill's down case, at the journal): on old
main a journal write that failed was dropped, so the call row was never opened or closed. Now
writes are retried in order until the database is back: nothing is lost. The fault is real:
the test database stops accepting connections and its sessions are terminated."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from ivr.calls.journal import CallJournal
from ivr.core.storage.calls import CallRepository
from ivr.core.storage.db import create_engine, scratch_database, session_factory
from ivr.core.storage.migrate import upgrade

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _connections(admin_url: str, name: str, allowed: bool) -> None:
    admin = create_engine(admin_url)
    try:
        async with admin.connect() as conn:
            await conn.execute(text("COMMIT"))
            await conn.execute(text(
                f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}'))
            if not allowed:
                await conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name"), {"name": name})
    finally:
        await admin.dispose()


async def test_writes_wait_for_the_database_and_none_is_lost(pg_url: str) -> None:
    async with scratch_database(pg_url, "journal") as url:
        await upgrade(url)
        name = url.rsplit("/", 1)[1].split("?")[0]
        engine = create_engine(url)
        journal = CallJournal(CallRepository(session_factory(engine)))
        journal.retry_delays_s = (0.2,) * 20  # the same order, quicker
        journal.start_writer()
        try:
            await _connections(pg_url, name, allowed=False)  # the database goes away
            call = uuid.uuid4()
            journal.start(call, channel_id="1.1", caller="13800138000", dialed="956100",
                          transport="ari")
            journal.step(call, "say", {"prompt": "greeting"})
            journal.finish(call, "completed")
            await asyncio.sleep(1.0)
            assert journal.retried >= 2 and journal.failed == 0
            await _connections(pg_url, name, allowed=True)  # and comes back
            await asyncio.wait_for(journal.flush(), 10)
            rows = await CallRepository(session_factory(engine)).recent(5)
            (row,) = [r for r in rows if r.id == call]
            assert row.outcome == "completed" and row.ended_at is not None
            assert [s["step"] for s in row.path] == ["say"]
        finally:
            await journal.close()
            await engine.dispose()
