"""The verification lockout (security issue, item 4) against the real embedded PostgreSQL.

Wrong PINs / ID tails are counted per card and per gas account across calls, in the database:
neither 返回主菜单 nor calling again resets the count. The failure that reaches the limit locks
the number; while locked the right PIN is refused too, without being checked, and the caller is
told and transferred to an agent. A success before the limit forgets the failures; a lock runs
out after its period. The table stores a hash of the number, never the number.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import delete, select

from dialog.actions import Dtmf, Say, Step, Utterance
from dialog.actions import Transfer as TransferAction
from dialog.backends._pg import CHINA_TZ
from dialog.backends.base import Backends
from dialog.backends.demo import demo_backends
from dialog.backends.locks import LockPolicy, lock_key
from dialog.backends.seed import demo_credentials, seed_demo
from dialog.backends.tables import VerificationLockRow
from dialog.business import build_actions
from dialog.catalog import Catalog
from dialog.engine import ActionFn, DialogEngine
from dialog.prompts import P
from ivr.core.storage.db import SessionFactory, create_engine, scratch_database, session_factory
from ivr.core.storage.migrate import upgrade

pytestmark = pytest.mark.asyncio(loop_scope="session")

START = datetime(2026, 11, 24, 10, 30, tzinfo=CHINA_TZ)
CREDS = demo_credentials()
MAIN = CREDS["fuel"]["main"]
GAS = CREDS["gas"]["smart_meter"]
POLICY = LockPolicy(max_failures=5, window=timedelta(hours=24), lock_for=timedelta(hours=24))


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class CountingFuel:
    """The demo fuel system, counting the PIN checks it is asked for."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.checks = 0

    async def verify(self, card_no: str, **kw: Any) -> bool:
        self.checks += 1
        return bool(await self.inner.verify(card_no, **kw))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sessions(pg_url: str) -> AsyncIterator[SessionFactory]:
    async with scratch_database(pg_url, "lockout") as url:
        await upgrade(url)
        engine = create_engine(url)
        factory = session_factory(engine)
        await seed_demo(factory, today=START.date())
        yield factory
        await engine.dispose()


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


@pytest_asyncio.fixture(loop_scope="session")
async def clock(sessions: SessionFactory) -> Clock:
    async with sessions() as s, s.begin():  # every test starts with no failures on record
        await s.execute(delete(VerificationLockRow))
    return Clock()


@pytest.fixture
def backends(sessions: SessionFactory, clock: Clock) -> Backends:
    be = demo_backends(sessions, now=clock, lock_policy=POLICY)
    return dataclasses.replace(be, fuel=CountingFuel(be.fuel))


@pytest.fixture
def actions(backends: Backends, clock: Clock) -> dict[str, ActionFn]:
    return build_actions(backends, today=lambda: clock().date())


def said(out: list[Any]) -> str:
    return "".join(a.text for a in out if isinstance(a, Say))


def steps(out: list[Any]) -> list[str]:
    return [a.name for a in out if isinstance(a, Step)]


async def balance_attempt(e: DialogEngine, pin: str) -> list[Any]:
    """From the route menu: 1 (fuel), 1 (balance), the card, then ``pin``."""
    await e.on_event(Dtmf("1"))
    out = await e.on_event(Dtmf("1"))
    assert e.state.bot == "fuel_balance" and "卡号" in said(out)
    await e.on_event(Dtmf(MAIN["card_no"] + "#"))
    return await e.on_event(Dtmf(pin + "#"))


async def wrong_pin_call(catalog: Catalog, actions: dict[str, ActionFn]) -> list[Any]:
    """One call: a wrong PIN, 返回主菜单, a wrong PIN again; what the caller heard last."""
    e = DialogEngine(catalog, actions)
    e.start()
    out = await balance_attempt(e, "000000")
    if isinstance(out[-1], TransferAction):
        return out
    assert "verify_failed" in steps(out) and "重新输入" in said(out)
    out = await e.on_event(Utterance("返回主菜单"))
    assert e.state.mode == "route" and e.state.vars.get("_verify_fails") == 1
    return await balance_attempt(e, "000000")


async def stored(sessions: SessionFactory) -> list[VerificationLockRow]:
    async with sessions() as s:
        return list((await s.execute(select(VerificationLockRow))).scalars())


async def test_wrong_pins_over_calls_lock_the_card_and_the_right_pin_is_refused(
    catalog: Catalog, actions: dict[str, ActionFn], backends: Backends, clock: Clock
) -> None:
    # calls 1 and 2: two wrong PINs each, the main menu in between; the menu does not reset
    # the count (the second failure of a call transfers, as before)
    for _ in range(2):
        out = await wrong_pin_call(catalog, actions)
        assert isinstance(out[-1], TransferAction)
        assert out[-1].reason == "verification_failed"
        clock.now += timedelta(minutes=10)
    # call 3: the fifth wrong PIN locks the card; the caller is told and goes to an agent
    e = DialogEngine(catalog, actions)
    e.start()
    out = await balance_attempt(e, "000000")
    assert "verify_locked" in steps(out) and P["verify_locked"] in said(out)
    assert "锁定" in said(out) and "人工" in said(out)
    assert isinstance(out[-1], TransferAction)
    assert (out[-1].line, out[-1].reason) == ("oil", "verification_locked")
    assert "pin" not in e.state.slots and "card_number" not in e.state.slots
    # call 4: the right PIN is refused too, and not even checked (no oracle)
    fuel = backends.fuel
    assert isinstance(fuel, CountingFuel)
    checks = fuel.checks
    clock.now += timedelta(hours=1)
    e = DialogEngine(catalog, actions)
    e.start()
    out = await balance_attempt(e, MAIN["pin"])
    assert fuel.checks == checks
    assert "verified" not in steps(out) and "1280.50" not in said(out)
    assert P["verify_locked"] in said(out)
    assert isinstance(out[-1], TransferAction) and out[-1].reason == "verification_locked"
    assert not e.state.verified


async def test_a_success_before_the_limit_resets_the_count(
    catalog: Catalog, actions: dict[str, ActionFn], backends: Backends, sessions: SessionFactory
) -> None:
    for _ in range(2):
        await wrong_pin_call(catalog, actions)
    [row] = await stored(sessions)
    assert row.failures == 4
    e = DialogEngine(catalog, actions)
    e.start()
    out = await balance_attempt(e, MAIN["pin"])
    assert "verified" in steps(out) and "1280.50" in said(out)
    assert await stored(sessions) == []
    # four more failures are four, not eight: still not locked
    for _ in range(2):
        out = await wrong_pin_call(catalog, actions)
        assert out[-1].reason == "verification_failed"
    assert backends.locks is not None
    state = await backends.locks.locked("fuel_card", MAIN["card_no"])
    assert not state.locked and state.failures == 4


async def test_a_lock_runs_out_after_its_period_and_old_failures_expire(
    actions: dict[str, ActionFn], backends: Backends, sessions: SessionFactory, clock: Clock
) -> None:
    verify = actions["verify.fuel_card"]
    card = MAIN["card_no"]

    async def attempt(pin: str) -> dict[str, Any]:
        return await verify({"_slots": {"card_number": card, "pin": pin}})

    # failures older than the window are forgotten
    for _ in range(4):
        assert await attempt("000000") == {"ok": False, "locked": False, "card_tail": card[-4:]}
    clock.now += POLICY.window + timedelta(minutes=1)
    assert (await attempt("000000"))["locked"] is False
    assert backends.locks is not None
    assert (await backends.locks.locked("fuel_card", card)).failures == 1
    # five within the window lock it for lock_for
    for _ in range(4):
        result = await attempt("000000")
    assert result["locked"] is True
    locked_at = clock.now
    clock.now = locked_at + POLICY.lock_for - timedelta(minutes=1)
    assert await attempt(MAIN["pin"]) == {"ok": False, "locked": True, "card_tail": card[-4:]}
    state = await backends.locks.locked("fuel_card", card)
    assert state.locked and state.locked_until == locked_at + POLICY.lock_for
    # guessing while locked does not lengthen the lock; once it has run out, the PIN works
    clock.now = locked_at + POLICY.lock_for
    assert await attempt(MAIN["pin"]) == {"ok": True, "locked": False, "card_tail": card[-4:]}
    assert await stored(sessions) == []


async def test_gas_accounts_and_unknown_numbers_are_locked_alike(
    actions: dict[str, ActionFn], backends: Backends
) -> None:
    verify = actions["verify.gas_account"]
    account = GAS["account_no"]
    for i in range(POLICY.max_failures):
        result = await verify({"_slots": {"gas_account": account, "id_tail": "999999"}})
        assert result["ok"] is False and result["locked"] is (i == POLICY.max_failures - 1)
    result = await verify({"_slots": {"gas_account": account, "id_tail": GAS["id_tail"]}})
    assert result == {"ok": False, "locked": True, "account_tail": account[-4:]}
    # the fuel card with the same digits is another key; an unknown card locks like a real one
    assert backends.locks is not None
    assert not (await backends.locks.locked("fuel_card", account)).locked
    unknown = "9001999999999999999"
    fuel = actions["verify.fuel_card"]
    for _ in range(POLICY.max_failures):
        result = await fuel({"_slots": {"card_number": unknown, "pin": "123456"}})
    assert result["locked"] is True


async def test_the_stored_key_is_a_hash_not_the_number(
    catalog: Catalog, actions: dict[str, ActionFn], backends: Backends, sessions: SessionFactory
) -> None:
    await wrong_pin_call(catalog, actions)
    [row] = await stored(sessions)
    card = MAIN["card_no"]
    assert row.kind == "fuel_card" and row.failures == 2
    assert row.key_hash == lock_key("fuel_card", card)
    assert row.key_hash == hashlib.sha256(f"fuel_card:{card}".encode()).hexdigest()
    assert lock_key("fuel_card", "9001 0100-0001 2345 678") == row.key_hash  # normalised
    values = " ".join(str(getattr(row, c.key)) for c in VerificationLockRow.__table__.columns)
    assert card not in values and card[-8:] not in values and card not in repr(row)

