"""A slow PostgreSQL under the business back end: the table a balance reads is locked by another
transaction, so the query waits. The action is given up at its deadline as *unavailable* (the
caller hears 系统暂时繁忙 and goes to an agent, within seconds, never tens of seconds), and a
verification that could not be checked is not taken for a wrong PIN."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from dialog.backends.demo import demo_backends
from dialog.backends.seed import MAIN, seed_demo
from dialog.business import build_actions
from dialog.engine import ActionFn, ActionRefused
from ivr.core.storage.db import create_engine, scratch_database, session_factory
from ivr.core.storage.migrate import upgrade
from ivr.tools.botcli import TEST_TODAY

DEADLINE_S = 0.8


@pytest.fixture(scope="module")
async def db(pg_url: str) -> AsyncIterator[tuple[str, dict[str, ActionFn]]]:
    async with scratch_database(pg_url, "ivr_test_deadline") as url:
        await upgrade(url)
        engine = create_engine(url)
        factory = session_factory(engine)
        await seed_demo(factory, today=TEST_TODAY)
        yield url, build_actions(demo_backends(factory), today=lambda: TEST_TODAY,
                                 deadline_s=DEADLINE_S)
        await engine.dispose()


async def _with_table_locked(url: str, table: str, hold_s: float) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            await asyncio.sleep(hold_s)
    finally:
        await engine.dispose()


async def test_a_locked_table_gives_the_action_up_at_its_deadline(
        db: tuple[str, dict[str, ActionFn]]) -> None:
    url, actions = db
    slots = {"card_number": MAIN}
    assert "balance" in str(await actions["fuel.balance"]({"_slots": slots}))  # answers at first
    locker = asyncio.create_task(_with_table_locked(url, "fuel_cards", 5.0))
    await asyncio.sleep(0.3)  # the lock is held
    try:
        t = time.monotonic()
        with pytest.raises(ActionRefused) as refused:
            await actions["fuel.balance"]({"_slots": slots})
        waited = time.monotonic() - t
        assert refused.value.unavailable and refused.value.message == "抱歉，系统暂时繁忙。"
        assert DEADLINE_S <= waited < DEADLINE_S + 0.7
        with pytest.raises(ActionRefused) as not_checked:
            await actions["verify.fuel_card"]({"_slots": {**slots, "pin": "123456"}})
        assert not_checked.value.unavailable  # not a wrong PIN
    finally:
        locker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await locker
    # the lock gone, the same call answers again
    assert await actions["fuel.balance"]({"_slots": slots})
