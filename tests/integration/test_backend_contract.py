"""The back-end contract (``dialog.backends.contract``) run against the demo back end on the
real embedded PostgreSQL, as a production adapter would run it against its test accounts.

The demo runs in databases of its own on the session's server (created, migrated to head and
seeded with ``seed_demo`` as in test_backends.py), so the contract's writes (a card cancelled, a
period invoiced) never meet other test files. Below the contract itself: proof that it catches
broken adapters, and that ``run_contract`` reaches every Protocol method.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import date, timedelta
from typing import Any, cast

import pytest
import pytest_asyncio

from dialog.backends.base import BackendError, Backends, Recharge, WorkOrder
from dialog.backends.contract import (
    PROTOCOLS,
    BackendContract,
    Check,
    ContractData,
    ContractViolation,
    check_caller_bugs,
    check_fuel_not_found,
    check_fuel_refusals,
    check_fuel_verify,
    check_gas_recharges,
    check_signatures,
    check_work_orders,
    run_contract,
)
from dialog.backends.demo import DemoFuelCards, demo_backends
from dialog.backends.demo_gas import DemoGasBilling, DemoWorkOrders
from dialog.backends.seed import seed_demo
from ivr.core.storage.db import (
    SessionFactory,
    create_engine,
    scratch_database,
    session_factory,
)
from ivr.core.storage.migrate import upgrade
from tests.demo_data import FUEL, GAS, NOW, TODAY

pytestmark = pytest.mark.asyncio(loop_scope="session")



def demo_contract_data() -> ContractData:
    """The seeded demo rows (``dialog.backends.seed``) as the contract's test accounts."""
    main, gas = FUEL["main"], GAS["recharge_not_credited"]
    return ContractData(
        today=TODAY,
        card_no=main["card_no"], pin=main["pin"], id_tail=main["id_tail"],
        history_start=TODAY - timedelta(days=90), history_end=TODAY,
        loss_card_no=FUEL["normal"]["card_no"],
        lost_card_no=FUEL["lost"]["card_no"],
        cancelled_card_no=FUEL["cancelled"]["card_no"],
        gas_account_no=gas["account_no"], gas_id_tail=gas["id_tail"],
        gas_phone_tail=gas["phone_tail"],
        card_holder=main["holder"], gas_holder=gas["holder"],
        frozen_card_no=FUEL["frozen"]["card_no"],
        cancel_card_no=FUEL["cancellable"]["card_no"],
        pending_load_card_no=FUEL["sub_pending_load"]["card_no"],
        invoiced_card_no=main["card_no"],  # its month before last is invoiced
        invoice_card_no=FUEL["lost"]["card_no"],
        invoice_start=TODAY - timedelta(days=60), invoice_end=TODAY,
    )


@asynccontextmanager
async def seeded_database(pg_url: str) -> AsyncIterator[SessionFactory]:
    """A fresh database on the session's server, migrated to head and seeded; dropped after."""
    async with scratch_database(pg_url, "contract") as url:
        await upgrade(url)
        engine = create_engine(url)
        try:
            sessions = session_factory(engine)
            added = await seed_demo(sessions, today=TODAY)
            assert added["fuel_cards"] == 8 and added["gas_accounts"] == 6
            yield sessions
        finally:
            await engine.dispose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sessions(pg_url: str) -> AsyncIterator[SessionFactory]:
    async with seeded_database(pg_url) as factory:
        yield factory


def demo(sessions: SessionFactory) -> Backends:
    return demo_backends(sessions, now=lambda: NOW)


# ---- the fixtures the contract asks for ----------------------------------------------------
@pytest.fixture
def backends(sessions: SessionFactory) -> Backends:
    return demo(sessions)


@pytest.fixture(scope="module")
def contract_data() -> ContractData:
    return demo_contract_data()


@pytest.fixture
def unreachable_backends() -> Backends:
    """The demo on a port nothing listens on (no connection is ever made: nothing to close)."""
    engine = create_engine("postgresql://nobody@127.0.0.1:1/none", connect_timeout_s=2)
    return demo(session_factory(engine))


class TestDemoBackendContract(BackendContract):
    """Every contract check on the demo back end (``test_contract[<check>]``)."""


# ---- the contract catches broken adapters --------------------------------------------------
class VerifyRaisesForUnknown(DemoFuelCards):
    async def verify(
        self, card_no: str, *, pin: str | None = None, id_tail: str | None = None
    ) -> bool:
        await self.card(card_no)  # lets a caller probe which card numbers exist
        return await super().verify(card_no, pin=pin, id_tail=id_tail)


class LeaksDriverErrors(DemoFuelCards):
    async def card(self, card_no: str) -> Any:
        raise ConnectionResetError(f"driver: lost connection reading card {card_no}")


class SpeaksCardNumbers(DemoFuelCards):
    async def report_loss(self, card_no: str, *, idem_key: str) -> Any:
        try:
            return await super().report_loss(card_no, idem_key=idem_key)
        except BackendError as exc:
            raise BackendError(f"卡号{card_no}：{exc.message_zh}") from exc


class NoLimitClamp(DemoGasBilling):
    async def recharges(self, account_no: str, limit: int = 5) -> list[Recharge]:
        every = await super().recharges(account_no, limit=50)
        return every[:limit]  # limit 0 gives nothing, -3 all but three


class ForgetsIdemKeys(DemoWorkOrders):
    async def create(self, **kwargs: Any) -> WorkOrder:
        key = kwargs.pop("idem_key")
        return await super().create(**kwargs, idem_key=f"{key}:{uuid.uuid4()}")


class TakesBlankKeys(DemoWorkOrders):
    async def create(self, *, idem_key: str, **kwargs: Any) -> WorkOrder:
        return await super().create(**kwargs, idem_key=idem_key.strip() or str(uuid.uuid4()))


class OtherTransactionsDefault(DemoFuelCards):
    async def transactions(self, card_no: str, start: date, end: date, limit: int = 10) -> Any:
        return await super().transactions(card_no, start, end, limit)


MUTANTS: list[tuple[str, Check, str, Callable[..., Any], str]] = [
    ("verify_raises", check_fuel_verify, "fuel", VerifyRaisesForUnknown, "raised NotFound"),
    ("driver_error", check_fuel_not_found, "fuel", LeaksDriverErrors,
     r"ConnectionResetError: driver: lost connection reading card \*+9999, not NotFound"),
    ("card_number_spoken", check_fuel_refusals, "fuel", SpeaksCardNumbers, "error text holds"),
    ("no_limit_clamp", check_gas_recharges, "gas", NoLimitClamp, "limit=0: 0 answers"),
    ("forgets_idem_keys", check_work_orders, "work_orders", ForgetsIdemKeys,
     "got different answers"),
    ("takes_blank_keys", check_caller_bugs, "work_orders", TakesBlankKeys,
     "work_orders.create: answered WorkOrder, not ValueError"),
    ("signature", check_signatures, "fuel", OtherTransactionsDefault, "'limit' default 10"),
]


@pytest.mark.parametrize(("check", "field", "mutant", "complaint"),
                         [m[1:] for m in MUTANTS], ids=[m[0] for m in MUTANTS])
async def test_the_contract_catches_a_broken_adapter(
    sessions: SessionFactory, check: Check, field: str, mutant: Callable[..., Any],
    complaint: str,
) -> None:
    broken = replace(demo(sessions), **{field: mutant(sessions, now=lambda: NOW)})
    with pytest.raises(ContractViolation, match=complaint) as exc:
        await check(broken, demo_contract_data())
    assert "9001999999999999" not in str(exc.value)  # driver text is masked in the report


async def test_optional_data_left_out_is_skipped(backends: Backends) -> None:
    data = replace(demo_contract_data(), frozen_card_no=None, cancel_card_no=None,
                   pending_load_card_no=None, invoiced_card_no=None, invoice_card_no=None)
    report = await run_contract(backends, data)
    skipped = {name for name, outcome in report.items() if outcome.startswith("skipped")}
    assert skipped == {"fuel_unfreeze_frozen", "fuel_cancel", "fuel_loads_pending",
                       "invoice_issue", "invoice_resend", "unreachable"}, report
    assert all(outcome == "ok" for name, outcome in report.items() if name not in skipped)


# ---- run_contract reaches every Protocol method --------------------------------------------
class Recorder:
    """An adapter's methods, noting each Protocol method called (signatures kept)."""

    def __init__(self, field: str, adapter: object, seen: set[str]) -> None:
        self._field, self._adapter, self._seen = field, adapter, seen

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._adapter, name)
        if not inspect.iscoroutinefunction(method):
            return method

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            self._seen.add(f"{self._field}.{name}")
            return await method(*args, **kwargs)

        return call


async def test_run_contract_reaches_every_protocol_method(
    pg_url: str, unreachable_backends: Backends
) -> None:
    seen: set[str] = set()
    async with seeded_database(pg_url) as factory:
        be = demo(factory)
        recorded = Backends(**{f: cast(Any, Recorder(f, getattr(be, f), seen)) for f in PROTOCOLS})
        report = await run_contract(recorded, demo_contract_data(),
                                    unreachable=unreachable_backends)
        assert set(report.values()) == {"ok"}, report
        # the one-use data is used up: a second run fails exactly the checks that consume it
        again = await run_contract(be, demo_contract_data())
    failed = {name for name, outcome in again.items() if outcome.startswith("FAILED")}
    assert failed == {"fuel_unfreeze_frozen", "fuel_cancel", "invoice_issue"}, again
    protocol_methods = {f"{field}.{name}" for field, proto in PROTOCOLS.items()
                        for name, fn in vars(proto).items()
                        if inspect.isfunction(fn) and not name.startswith("_")}
    assert len(protocol_methods) == 16 and seen == protocol_methods
