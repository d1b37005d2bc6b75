"""Demo business back ends against the real embedded PostgreSQL.

The tests run in a database of their own on the session's server (created, migrated to head and
seeded here), so their writes (a card lost, a card cancelled) never meet other test files.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
import pytest_asyncio
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from dialog.backends import seed as seed_module
from dialog.backends._pg import CHINA_TZ
from dialog.backends.base import (
    BackendError,
    Backends,
    BackendUnavailable,
    FuelCardSystem,
    GasBilling,
    InvoiceSystem,
    NotFound,
    WorkOrder,
    WorkOrders,
)
from dialog.backends.demo import DemoFuelCards, DemoInvoices, demo_backends
from dialog.backends.demo_gas import DemoGasBilling, DemoWorkOrders
from dialog.backends.seed import demo_credentials, seed_demo
from dialog.backends.tables import CardEventRow, FuelCardRow, InvoiceRow, WorkOrderRow
from ivr.core.storage.db import SessionFactory, create_engine, session_factory
from ivr.core.storage.migrate import current, head, upgrade
from tests.demo_data import FUEL, GAS, NOW, TODAY

pytestmark = pytest.mark.asyncio(loop_scope="session")



def key() -> str:
    return f"test:{uuid.uuid4()}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def biz_db(pg_url: str, pg_engine: AsyncEngine) -> AsyncIterator[tuple[str, AsyncEngine]]:
    name = f"backends_{uuid.uuid4().hex[:10]}"
    async with pg_engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    await upgrade(url)
    engine = create_engine(url)
    yield url, engine
    await engine.dispose()
    async with pg_engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sessions(biz_db: tuple[str, AsyncEngine]) -> SessionFactory:
    factory = session_factory(biz_db[1])
    added = await seed_demo(factory, today=TODAY)
    assert added["fuel_cards"] == 8 and added["gas_accounts"] == 6
    return factory


@pytest.fixture
def be(sessions: SessionFactory) -> Backends:
    return demo_backends(sessions, now=lambda: NOW)


# ---- schema and seed -----------------------------------------------------------------------
async def test_migration_0002_is_applied(pg_url: str, pg_engine: AsyncEngine,
                                         biz_db: tuple[str, AsyncEngine]) -> None:
    # 0002 is no longer the head (0003 adds the bot versions); both databases are at head
    assert (head() or "") >= "0002"
    assert await current(pg_url) == head() == await current(biz_db[0])
    async with pg_engine.connect() as conn:
        names = set((await conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars())
    assert {"fuel_cards", "fuel_transactions", "card_events", "invoices", "gas_accounts",
            "gas_recharges", "gas_meters", "work_orders"} <= names


async def test_seed_is_idempotent_and_credentials_documented(sessions: SessionFactory) -> None:
    again = await seed_demo(sessions, today=TODAY)
    assert set(again.values()) == {0}
    doc = seed_module.__doc__ or ""
    for c in FUEL.values():
        assert c["card_no"] in doc and c["pin"] in doc and c["id_tail"] in doc
        assert len(c["card_no"]) == 19 and c["card_no"].startswith("9001")
    for a in GAS.values():
        assert a["account_no"] in doc and a["id_tail"] in doc and a["phone_tail"] in doc
        assert len(a["account_no"]) == 10
    demo_credentials()["fuel"]["main"]["pin"] = "x"  # a copy: the next call is unchanged
    assert demo_credentials()["fuel"]["main"]["pin"] == FUEL["main"]["pin"]


async def test_the_demo_classes_satisfy_the_protocols(sessions: SessionFactory) -> None:
    fuel: FuelCardSystem = DemoFuelCards(sessions)
    invoices: InvoiceSystem = DemoInvoices(sessions)
    gas: GasBilling = DemoGasBilling(sessions)
    orders: WorkOrders = DemoWorkOrders(sessions)
    assert Backends(fuel, invoices, gas, orders).fuel is fuel


async def test_nothing_stores_clear_secrets(sessions: SessionFactory) -> None:
    secrets = {c["pin"] for c in FUEL.values()} | {c["id_tail"] for c in FUEL.values()}
    secrets |= {a["id_tail"] for a in GAS.values()} | {a["phone_tail"] for a in GAS.values()}
    async with sessions() as s:
        rows = (await s.execute(text(
            "SELECT to_jsonb(t) - 'card_no' FROM fuel_cards t "
            "UNION ALL SELECT to_jsonb(t) - 'account_no' FROM gas_accounts t"))).scalars().all()
        hashes = (await s.execute(select(FuelCardRow.id_tail_hash).where(
            FuelCardRow.holder_name == "张伟"))).scalars().all()
    assert len(rows) == 14
    for row in rows:
        hashed = [v for k, v in row.items() if k.endswith("_hash")]
        assert len(hashed) == 2 and all(v.startswith("pbkdf2_sha256$") for v in hashed)
        # (hex digests may hold any 4 digits by chance: only the clear columns are searched)
        clear = [str(v) for k, v in row.items() if not k.endswith(("_hash", "card_no"))]
        assert not any(secret in v for secret in secrets for v in clear), row
    assert len(hashes) == 3 and len(set(hashes)) == 3  # same ID tail, a salt per row


# ---- fuel cards ----------------------------------------------------------------------------
async def test_verify_pin_and_id_tail(be: Backends) -> None:
    main = FUEL["main"]
    assert await be.fuel.verify(main["card_no"], pin=main["pin"])
    assert not await be.fuel.verify(main["card_no"], pin="000000")
    assert await be.fuel.verify(main["card_no"], id_tail=main["id_tail"].lower())
    assert not await be.fuel.verify(main["card_no"], id_tail="999999")
    assert not await be.fuel.verify(main["card_no"])
    assert not await be.fuel.verify("9001999999999999999", pin=main["pin"])
    assert not await be.fuel.verify(FUEL["normal"]["card_no"], pin=main["pin"])


async def test_card_balance_and_sub_cards(be: Backends) -> None:
    card = await be.fuel.card(FUEL["main"]["card_no"])
    assert card.balance == Decimal("1280.50") and card.status == "normal" and card.is_main
    assert card.holder_masked == "张*" and card.points == 3560
    sub = await be.fuel.card(FUEL["sub_pending_load"]["card_no"])
    assert not sub.is_main and sub.main_card_no == card.card_no
    assert await be.fuel.loads_pending(sub.card_no) == Decimal("200.00")
    assert (await be.fuel.card(FUEL["lost"]["card_no"])).status == "lost"
    with pytest.raises(NotFound) as exc:
        await be.fuel.card("9001999999999999999")
    assert "没有查到" in exc.value.message_zh


async def test_transactions_in_range_newest_first(be: Backends, sessions: SessionFactory) -> None:
    card_no = FUEL["main"]["card_no"]
    start, end = TODAY - timedelta(days=90), TODAY
    txs = await be.fuel.transactions(card_no, start, end, limit=50)
    async with sessions() as s:
        total = (await s.execute(text(
            "SELECT count(*) FROM fuel_transactions WHERE card_no = :c"), {"c": card_no}
        )).scalar_one()
    assert 3 <= len(txs) == total <= 10
    assert [t.at for t in txs] == sorted((t.at for t in txs), reverse=True)
    assert all(t.station.startswith("中石") and t.amount > 0 for t in txs)
    assert all((t.liters is not None) == (t.kind == "fuel") for t in txs)
    assert len(await be.fuel.transactions(card_no, start, end)) == min(5, total)
    # a narrower window: only what falls in it, both days inclusive (China time)
    mid = txs[len(txs) // 2].at.astimezone(CHINA_TZ).date()
    window = await be.fuel.transactions(card_no, mid, mid, limit=50)
    assert window and all(t.at.astimezone(CHINA_TZ).date() == mid for t in window)
    assert await be.fuel.transactions(card_no, TODAY + timedelta(days=1), TODAY + timedelta(2)) \
        == []


async def test_report_loss_is_idempotent(be: Backends, sessions: SessionFactory) -> None:
    card_no, k = FUEL["normal"]["card_no"], key()
    first = await be.fuel.report_loss(card_no, idem_key=k)
    again = await be.fuel.report_loss(card_no, idem_key=k)
    assert first == again and re.fullmatch(r"GS20261124\d{6}", first.ref)
    assert (await be.fuel.card(card_no)).status == "lost"
    async with sessions() as s:
        n = (await s.execute(select(func.count()).select_from(CardEventRow)
                             .where(CardEventRow.card_no == card_no))).scalar_one()
    assert n == 1
    with pytest.raises(BackendError, match="已经挂失"):
        await be.fuel.report_loss(card_no, idem_key=key())
    with pytest.raises(BackendError, match="已经销户"):
        await be.fuel.report_loss(FUEL["cancelled"]["card_no"], idem_key=key())
    # the same key for another operation is a caller bug, refused
    with pytest.raises(BackendError):
        await be.fuel.unfreeze(card_no, idem_key=k)
    # a lost card can be un-lost (解挂) by phone; then it is normal again
    await be.fuel.unfreeze(card_no, idem_key=key())
    assert (await be.fuel.card(card_no)).status == "normal"


async def test_unfreeze_rules(be: Backends) -> None:
    card_no = FUEL["frozen"]["card_no"]
    done = await be.fuel.unfreeze(card_no, idem_key=(k := key()))
    assert await be.fuel.unfreeze(card_no, idem_key=k) == done
    assert (await be.fuel.card(card_no)).status == "normal"
    with pytest.raises(BackendError, match="状态正常"):
        await be.fuel.unfreeze(card_no, idem_key=key())


async def test_cancel_refusals(be: Backends) -> None:
    refusals = {
        "lost": "已经挂失", "cancelled": "已经销户", "main": "副卡没有销户",
        "sub_pending_load": "没有圈存",
    }
    for scenario, words in refusals.items():
        card_no = FUEL[scenario]["card_no"]
        before = await be.fuel.card(card_no)
        with pytest.raises(BackendError) as exc:
            await be.fuel.cancel(card_no, idem_key=key())
        assert words in exc.value.message_zh, scenario
        assert await be.fuel.card(card_no) == before  # nothing changed


async def test_cancel_refunds_and_is_idempotent(be: Backends, sessions: SessionFactory) -> None:
    card_no, k = FUEL["cancellable"]["card_no"], key()
    done = await be.fuel.cancel(card_no, idem_key=k)
    assert done.refund == Decimal("2350.00") and re.fullmatch(r"XH20261124\d{6}", done.ref)
    assert await be.fuel.cancel(card_no, idem_key=k) == done
    card = await be.fuel.card(card_no)
    assert card.status == "cancelled" and card.balance == 0
    with pytest.raises(BackendError, match="已经销户"):
        await be.fuel.cancel(card_no, idem_key=key())
    # a sub-card's balance goes back to its main card
    main_before = (await be.fuel.card(FUEL["main"]["card_no"])).balance
    sub = await be.fuel.cancel(FUEL["sub"]["card_no"], idem_key=key())
    assert sub.refund == Decimal("150.00")
    assert (await be.fuel.card(FUEL["main"]["card_no"])).balance == main_before + sub.refund


# ---- invoices ------------------------------------------------------------------------------
async def test_invoice_issue_is_idempotent(be: Backends, sessions: SessionFactory) -> None:
    card_no, k = FUEL["lost"]["card_no"], key()
    start, end = TODAY - timedelta(days=60), TODAY
    inv = await be.invoices.issue(card_no, start=start, end=end, title="王强",
                                  email="wq@example.cn", idem_key=k)
    again = await be.invoices.issue(card_no, start=start, end=end, title="王强",
                                    email="wq@example.cn", idem_key=k)
    assert inv == again and inv.status == "sent" and inv.amount > 0
    expected = sum(t.amount for t in await be.fuel.transactions(card_no, start, end, limit=50)
                   if t.kind == "fuel")
    assert inv.amount == expected
    async with sessions() as s:
        n = (await s.execute(select(func.count()).select_from(InvoiceRow)
                             .where(InvoiceRow.idem_key == k))).scalar_one()
    assert n == 1
    with pytest.raises(BackendError, match="已经开过发票"):
        await be.invoices.issue(card_no, start=end, end=end, title="王强", email=None,
                                idem_key=key())
    resent = await be.invoices.resend(inv.ref, "wq2@example.cn", (rk := key()))
    assert resent.ref == inv.ref and resent.status == "sent"
    assert await be.invoices.resend(inv.ref, "wq2@example.cn", rk) == resent
    assert inv.ref in [i.ref for i in await be.invoices.list_invoices(card_no)]
    with pytest.raises(NotFound):
        await be.invoices.resend("FP000", "wq@example.cn", key())
    with pytest.raises(BackendError, match="邮箱"):
        await be.invoices.resend(inv.ref, "not-an-email", key())


async def test_invoice_refusals(be: Backends) -> None:
    main = FUEL["main"]["card_no"]
    seeded = await be.invoices.list_invoices(main)
    assert len(seeded) == 1 and seeded[0].start is not None and seeded[0].end is not None
    with pytest.raises(BackendError, match="已经开过发票"):
        await be.invoices.issue(main, start=seeded[0].start, end=seeded[0].end, title="x",
                                email=None, idem_key=key())
    with pytest.raises(BackendError, match="没有可以开票"):
        await be.invoices.issue(main, start=TODAY + timedelta(1), end=TODAY + timedelta(2),
                                title="x", email=None, idem_key=key())
    with pytest.raises(BackendError, match="开始日期"):
        await be.invoices.issue(main, start=TODAY, end=TODAY - timedelta(1), title="x",
                                email=None, idem_key=key())


# ---- gas -----------------------------------------------------------------------------------
async def test_gas_verify_and_account(be: Backends) -> None:
    a = GAS["recharge_not_credited"]
    assert await be.gas.verify(a["account_no"], id_tail=a["id_tail"])
    assert await be.gas.verify(a["account_no"], phone_tail=a["phone_tail"])
    assert not await be.gas.verify(a["account_no"], id_tail=a["id_tail"], phone_tail="0000")
    assert not await be.gas.verify(a["account_no"])
    assert not await be.gas.verify("3199999999", phone_tail=a["phone_tail"])
    acc = await be.gas.account(a["account_no"])
    assert acc.holder_masked == "孙*" and acc.address_masked == "北京市朝阳区****"
    assert acc.balance == Decimal("86.40") and acc.status == "normal"
    arrears = await be.gas.account(GAS["arrears"]["account_no"])
    assert arrears.arrears == Decimal("235.60") and arrears.status == "arrears"
    with pytest.raises(NotFound):
        await be.gas.account("3199999999")


async def test_gas_recharge_not_credited_is_visible(be: Backends) -> None:
    latest = (await be.gas.recharges(GAS["recharge_not_credited"]["account_no"]))[0]
    assert not latest.credited and not latest.written_to_card
    assert latest.amount == Decimal("200.00") and latest.channel == "wechat"
    assert latest.at.astimezone(CHINA_TZ).date() == TODAY - timedelta(days=2)
    unwritten = (await be.gas.recharges(GAS["not_written_to_card"]["account_no"], limit=1))
    assert len(unwritten) == 1 and unwritten[0].credited and not unwritten[0].written_to_card
    ok = await be.gas.recharges(GAS["smart_meter"]["account_no"])
    assert len(ok) == 3 and all(r.credited and r.written_to_card for r in ok)


async def test_gas_meters(be: Backends) -> None:
    faulty = await be.gas.meter(GAS["meter_faulty"]["account_no"])
    assert faulty.status == "faulty" and faulty.kind == "smart"
    ic = await be.gas.meter(GAS["recharge_not_credited"]["account_no"])
    assert ic.kind == "ic_card" and ic.last_reading == Decimal("1523.60")
    assert (await be.gas.meter(GAS["suspended"]["account_no"])).status == "valve_closed"
    with pytest.raises(NotFound):
        await be.gas.meter("3199999999")


# ---- work orders ---------------------------------------------------------------------------
async def test_work_order_idempotent_and_numbered(be: Backends, sessions: SessionFactory) -> None:
    k = key()
    account = GAS["meter_faulty"]["account_no"]

    async def create() -> WorkOrder:
        return await be.work_orders.create(
            kind="meter_fault", line="gas", subject="燃气表故障，无法用气",
            detail={"现象": "表显示E3", "户号": account}, account=account, phone="13800138000",
            idem_key=k,
        )

    orders = await asyncio.gather(*(create() for _ in range(5)))  # concurrent retries
    assert len({o.number for o in orders}) == 1
    order = orders[0]
    assert re.fullmatch(r"GD20261124\d{4}", order.number)
    assert order.status == "open" and order.eta_hours == 24 and order.line == "gas"
    async with sessions() as s:
        rows = (await s.execute(select(WorkOrderRow).where(WorkOrderRow.idem_key == k))).all()
    assert len(rows) == 1 and rows[0][0].detail["现象"] == "表显示E3"
    assert await be.work_orders.get(order.number) == order
    urgent = await be.work_orders.create(kind="gas_leak", line="gas", subject="疑似燃气泄漏",
                                         detail={}, priority="emergency", idem_key=key())
    assert urgent.number != order.number and urgent.status == "dispatched"
    assert urgent.eta_hours == 1
    with pytest.raises(NotFound):
        await be.work_orders.get("GD000000000000")
    with pytest.raises(ValueError):
        await be.work_orders.create(kind="x", line="water", subject="x", detail={},  # type: ignore[arg-type]
                                    idem_key=key())


async def test_database_down_is_a_backend_error() -> None:
    engine = create_engine("postgresql://nobody@127.0.0.1:1/none", connect_timeout_s=2)
    try:
        with pytest.raises(BackendUnavailable) as exc:
            await demo_backends(session_factory(engine)).fuel.card("9001010000012345678")
        assert "稍后" in exc.value.message_zh and "9001010000012345678" not in str(exc.value)
    finally:
        await engine.dispose()
