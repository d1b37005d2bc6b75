"""The contract of the business back ends: checks any adapter of ``dialog.backends.base`` (the
PostgreSQL demo or a production adapter on the company's systems) must pass.

Every Protocol method is checked for its answer's shape and types, for an unknown number, for a
wrong PIN or ID tail, for refused writes, for ``limit`` and for idempotency. What the contract
decides, where ``base`` leaves room:

- Types: results are the ``base`` dataclasses; money is a ``Decimal`` of at most 2 places, never
  negative; times are timezone-aware; codes are in ``base``'s vocabularies (``CARD_STATUSES``,
  ``CHANNEL_ZH``...); a work order number is ``GD`` + its China date + 4 digits.
- ``verify`` answers ``bool`` and never raises for an unknown number (False); no secret given is
  False; a wrong PIN is not rescued by a right ID tail; the ID tail's ``X`` may be ``x``. Gas:
  at least one of ID tail and phone tail, and every one given must match.
- An unknown card, account, invoice or work order is ``NotFound``, for writes too, also for odd
  input (empty, letters, 64 digits, quotes, Chinese numerals). A refused write (a lost card
  reported lost, a cancelled card, money waiting to be loaded, an invoiced period, a bad e-mail,
  a key reused for another write) is a ``BackendError`` that is neither ``NotFound`` nor
  ``BackendUnavailable``, and changes nothing. A back end that cannot be reached is
  ``BackendUnavailable`` from every method (``verify`` too: "system down" is not "wrong PIN").
  Never any other exception: no driver error leaks.
- Every ``BackendError`` has a ``message_zh`` that is a Chinese sentence (ends in 。！？), and
  neither it nor ``detail`` holds a card or account number, PIN or ID tail.
- A call the bot got wrong is a ``ValueError`` before anything is looked up: a blank
  ``idem_key``, a line or priority outside the vocabulary, an empty work-order kind or subject.
- ``limit`` is clamped to 1..50: 0 or less gives the newest one, a huge one at most 50.
- Idempotency: a write repeated with its key returns an equal result and changes nothing, also
  when the repeats run at once and when the card changed in between (a replayed loss report
  after 解挂 does not lose the card again).
- Cancelling refunds the card's balance and leaves it at 0; 圈存 money waiting blocks it. A period
  is invoiced once; an invoice with an e-mail is ``sent``. A recharge written to the card (or
  delivered) was credited. An emergency work order is never promised later than a normal one.

Adopting it: a test module (pytest, pytest-asyncio) provides the fixtures ``backends`` (a
``Backends``) and ``contract_data`` (a ``ContractData`` naming the adapter's test accounts), and
optionally ``unreachable_backends`` (the adapter pointed at a closed port; a plain, not async,
fixture), then subclasses ``BackendContract``::

    @pytest.fixture
    def backends() -> Backends: return acme_backends(ACME_TEST_URL)
    @pytest.fixture
    def contract_data() -> ContractData: return ContractData(card_no=ACME_TEST_CARD, ...)
    class TestAcmeBackends(BackendContract): pass

Without pytest: ``await run_contract(backends, data)`` runs every check and reports each.

What the contract writes: ``loss_card_no`` is reported lost and un-lost again (it ends normal),
and work orders of kind ``contract_check`` are created; the one-use data (``frozen_card_no``,
``cancel_card_no``, the ``invoice_*`` period) is consumed, so give those fresh for each run or
leave them ``None`` (those checks are then skipped).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from dialog.backends.base import (
    CARD_STATUSES,
    CHANNEL_ZH,
    GAS_ACCOUNT_STATUSES,
    INVOICE_STATUSES,
    METER_KINDS,
    METER_STATUSES,
    TRANSACTION_KINDS,
    WORK_ORDER_STATUSES,
    BackendError,
    Backends,
    BackendUnavailable,
    Cancellation,
    FuelCard,
    FuelCardSystem,
    GasAccount,
    GasBilling,
    Invoice,
    InvoiceSystem,
    LossReport,
    Meter,
    NotFound,
    Recharge,
    Transaction,
    Unfreeze,
    WorkOrder,
    WorkOrders,
)
from ivr.core.chinatime import CHINA
from ivr.core.privacy import mask_digits_in_text

CHINA_TZ = CHINA
MAX_LIMIT = 50  # ``limit`` is clamped to 1..MAX_LIMIT
CENT = Decimal("0.01")
WORK_ORDER_KIND = "contract_check"
# numbers no back end has; each lookup must answer NotFound (verify: False), nothing else
ODD_NUMBERS: tuple[str, ...] = (
    "", "   ", "abc", "9" * 64, "' OR '1'='1", "九零零一", "%_%", "0",
)
PROTOCOLS: dict[str, type] = {
    "fuel": FuelCardSystem, "invoices": InvoiceSystem, "gas": GasBilling,
    "work_orders": WorkOrders,
}
_CJK = re.compile(r"[\u4e00-\u9fff]")
_WORK_ORDER_NO = re.compile(r"GD(\d{8})\d{4}")
T = TypeVar("T")
Call = Callable[[], Awaitable[T]]  # a call not made yet


class ContractViolation(AssertionError):
    """The adapter broke the contract (or the contract data does not describe it)."""


class NotApplicable(Exception):
    """The check needs contract data this adapter did not give (pytest: skipped)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractData:
    """The adapter's test accounts and what is known about them.

    Required: a normal card (``card_no``, never written by the contract; ``pin`` and
    ``id_tail`` open it; it has at least 2 transactions from ``history_start`` to
    ``history_end``), a normal card to report lost and un-lose (``loss_card_no``; its PIN is not
    ``pin``), a lost and a cancelled card, and a gas account with its ID and phone tails, at
    least 2 recharges and a meter. ``today`` is the adapter's date (China time).

    Optional (``None``: the checks needing them are skipped): the clear holder names (to check
    they are masked); a frozen card (unfrozen: one use); a normal card with no 圈存 money waiting
    and no open sub-card (``cancel_card_no``: cancelled, one use); a normal card with 圈存 money
    waiting; a card with at least one invoice with its period (re-sent to ``email``); a card and
    a period with fuel bought and never invoiced (``invoice_*``: invoiced, one use).
    """

    today: date
    card_no: str
    pin: str
    id_tail: str
    history_start: date
    history_end: date
    loss_card_no: str
    lost_card_no: str
    cancelled_card_no: str
    gas_account_no: str
    gas_id_tail: str
    gas_phone_tail: str
    card_holder: str | None = None
    gas_holder: str | None = None
    frozen_card_no: str | None = None
    cancel_card_no: str | None = None
    pending_load_card_no: str | None = None
    invoiced_card_no: str | None = None
    invoice_card_no: str | None = None
    invoice_start: date | None = None
    invoice_end: date | None = None
    email: str = "contract-check@example.com"
    unknown_card_no: str = "9001999999999999999"
    unknown_account_no: str = "3199999999"
    unknown_invoice_ref: str = "FP00000000000000"
    unknown_work_order: str = "GD000000000000"
    key_prefix: str = "contract"

    def key(self, step: str) -> str:
        """A fresh ``idem_key`` (unique per run, so the contract can run again)."""
        return f"{self.key_prefix}:{step}:{uuid.uuid4().hex}"

    def secrets(self) -> list[str]:
        """Values no error text may hold: card and account numbers, PINs, ID tails."""
        names = ("card_no", "pin", "id_tail", "account_no")
        values = [getattr(self, f.name) for f in fields(self)
                  if f.name.endswith(names) and not f.name.startswith("unknown")]
        return [v for v in values if isinstance(v, str) and len(v.strip()) >= 6]


Check = Callable[[Backends, ContractData], Awaitable[None]]


# ---- assertions ----------------------------------------------------------------------------
def _expect(condition: object, what: str) -> None:
    if not condition:
        raise ContractViolation(what)


def _needs(value: T | None, field: str) -> T:
    if value is None:
        raise NotApplicable(f"ContractData.{field} not given")
    return value


def _describe(exc: BaseException) -> str:
    first = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {mask_digits_in_text(first)[:200]}"


def _speakable(exc: BackendError, what: str, data: ContractData) -> None:
    msg = exc.message_zh
    _expect(isinstance(msg, str) and _CJK.search(msg) and msg.rstrip().endswith(("。", "！", "？")),
            f"{what}: message_zh is not a Chinese sentence: {msg!r}")
    texts = (msg, exc.detail, str(exc))
    for secret in data.secrets():
        _expect(not any(secret in (t or "") for t in texts),
                f"{what}: the error text holds a card/account number, PIN or ID tail")


async def _raises(call: Awaitable[Any], what: str, kind: type[Exception]) -> Exception:
    try:
        result = await call
    except kind as exc:
        return exc
    except Exception as exc:
        raise ContractViolation(f"{what}: raised {_describe(exc)}, not {kind.__name__}") from exc
    raise ContractViolation(f"{what}: answered {type(result).__name__}, not {kind.__name__}")


async def _not_found(call: Awaitable[Any], what: str, data: ContractData) -> None:
    exc = await _raises(call, what, NotFound)
    assert isinstance(exc, NotFound)
    _speakable(exc, what, data)


async def _refused(call: Awaitable[Any], what: str, data: ContractData) -> BackendError:
    exc = await _raises(call, what, BackendError)
    assert isinstance(exc, BackendError)
    _expect(not isinstance(exc, NotFound | BackendUnavailable),
            f"{what}: a refusal must not be {type(exc).__name__}")
    _speakable(exc, what, data)
    return exc


async def _caller_bug(call: Awaitable[Any], what: str) -> None:
    exc = await _raises(call, what, ValueError)
    _expect(not isinstance(exc, BackendError), f"{what}: a caller bug is a plain ValueError")


async def _in_turn(
    calls: Sequence[tuple[str, Awaitable[Any]]],
    step: Callable[[Awaitable[Any], str], Awaitable[object]],
) -> None:
    """``await step(call, what)`` for each call in turn; after a failure the calls not made are
    closed (no "never awaited" warnings)."""
    for i, (what, call) in enumerate(calls):
        try:
            await step(call, what)
        except BaseException:
            for _, rest in calls[i + 1:]:
                if inspect.iscoroutine(rest):
                    rest.close()
            raise


async def _answer(call: Awaitable[T], what: str) -> T:
    try:
        return await call
    except Exception as exc:
        raise ContractViolation(f"{what}: raised {_describe(exc)}") from exc


async def _at_once(calls: Sequence[Awaitable[T]], what: str,
                   same: Callable[[T], object] = lambda r: r) -> T:
    """Run ``calls`` (one write, retried with its key) concurrently: one equal answer."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    answers: list[T] = []
    for r in results:
        if isinstance(r, BaseException):
            raise ContractViolation(f"{what}: a concurrent retry raised {_describe(r)}") from r
        answers.append(r)
    _expect(all(same(a) == same(answers[0]) for a in answers),
            f"{what}: concurrent retries with one idem_key got different answers")
    return answers[0]


def _money(value: object, what: str, *, positive: bool = False) -> Decimal:
    _expect(isinstance(value, Decimal) and value.is_finite(),
            f"{what} is not a finite Decimal: {type(value).__name__}")
    assert isinstance(value, Decimal)
    _expect(value == value.quantize(CENT), f"{what} has more than 2 decimal places")
    _expect(value > 0 if positive else value >= 0, f"{what} is {value}")
    return value


def _aware(value: object, what: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    _expect(isinstance(value, datetime) and value.utcoffset() is not None,
            f"{what} is not a timezone-aware datetime: {value!r}")


def _text(value: object, what: str) -> None:
    _expect(isinstance(value, str) and value.strip(), f"{what} is not a non-empty string")


def _is(value: object, kind: type, what: str) -> None:
    _expect(isinstance(value, kind), f"{what} is {type(value).__name__}, not {kind.__name__}")


def _int(value: object, what: str) -> int:
    _expect(type(value) is int and value >= 0, f"{what} is not an int >= 0: {value!r}")
    assert isinstance(value, int)
    return value


def _masked(value: str, clear: str | None, what: str) -> None:
    _text(value, what)
    if clear:
        _expect(clear.strip() not in value, f"{what} holds the clear name")


def _china_day(at: datetime) -> date:
    return at.astimezone(CHINA_TZ).date()


def _other(secret: str) -> str:
    """A wrong value of the same form (every digit moved on by one)."""
    return "".join(str((int(c) + 1) % 10) if c.isdigit() else c for c in secret) + (
        "" if any(c.isdigit() for c in secret) else "0")


# ---- shapes --------------------------------------------------------------------------------
def _check_card(card: object, card_no: str, what: str, data: ContractData) -> FuelCard:
    _is(card, FuelCard, what)
    assert isinstance(card, FuelCard)
    _expect(card.card_no == card_no, f"{what}: card_no is not the card asked for")
    _expect(card.status in CARD_STATUSES, f"{what}: status {card.status!r}")
    _money(card.balance, f"{what}.balance")
    _int(card.points, f"{what}.points")
    _is(card.is_main, bool, f"{what}.is_main")
    if card.is_main:
        _expect(card.main_card_no is None, f"{what}: a main card has no main_card_no")
    else:
        _expect(card.main_card_no is None or (isinstance(card.main_card_no, str)
                                              and card.main_card_no != card.card_no),
                f"{what}: a sub-card's main_card_no is another card")
    _masked(card.holder_masked, data.card_holder if card_no == data.card_no else None,
            f"{what}.holder_masked")
    return card


def _check_transaction(t: object, what: str) -> Transaction:
    _is(t, Transaction, what)
    assert isinstance(t, Transaction)
    _aware(t.at, f"{what}.at")
    _text(t.station, f"{what}.station")
    _money(t.amount, f"{what}.amount", positive=True)
    _expect(t.kind in TRANSACTION_KINDS, f"{what}: kind {t.kind!r}")
    if t.kind != "fuel":
        _expect(t.liters is None, f"{what}: liters on a {t.kind} transaction")
    elif t.liters is not None:
        _expect(isinstance(t.liters, Decimal) and t.liters > 0, f"{what}.liters {t.liters!r}")
    return t


def _check_invoice(inv: object, what: str) -> Invoice:
    _is(inv, Invoice, what)
    assert isinstance(inv, Invoice)
    _text(inv.ref, f"{what}.ref")
    _money(inv.amount, f"{what}.amount", positive=True)
    _expect(inv.status in INVOICE_STATUSES, f"{what}: status {inv.status!r}")
    if inv.status == "sent":
        _expect(inv.email, f"{what}: sent, but to no e-mail")
    if inv.start is not None and inv.end is not None:
        _expect(inv.start <= inv.end, f"{what}: period starts after it ends")
    _aware(inv.at, f"{what}.at", optional=True)
    return inv


def _check_recharge(r: object, what: str) -> Recharge:
    _is(r, Recharge, what)
    assert isinstance(r, Recharge)
    _text(r.ref, f"{what}.ref")
    _aware(r.at, f"{what}.at")
    _money(r.amount, f"{what}.amount", positive=True)
    _expect(r.channel in CHANNEL_ZH, f"{what}: channel {r.channel!r}")
    _is(r.credited, bool, f"{what}.credited")
    _is(r.written_to_card, bool, f"{what}.written_to_card")
    _expect(r.credited or not r.written_to_card, f"{what}: written to the card, not credited")
    return r


def _check_order(o: object, what: str, today: date) -> WorkOrder:
    _is(o, WorkOrder, what)
    assert isinstance(o, WorkOrder)
    m = _WORK_ORDER_NO.fullmatch(o.number) if isinstance(o.number, str) else None
    _expect(m, f"{what}: number {o.number!r} is not GD + yyyymmdd + 4 digits")
    assert m is not None
    try:
        day = datetime.strptime(m.group(1), "%Y%m%d").date()
    except ValueError:
        raise ContractViolation(f"{what}: number {o.number!r} holds no date") from None
    _expect(abs((day - today).days) <= 1, f"{what}: number dated {day}, today is {today}")
    _expect(o.status in WORK_ORDER_STATUSES, f"{what}: status {o.status!r}")
    _expect(type(o.eta_hours) is int and o.eta_hours > 0, f"{what}: eta_hours {o.eta_hours!r}")
    _aware(o.created_at, f"{what}.created_at", optional=True)
    if o.created_at is not None:
        _expect(_china_day(o.created_at) == day, f"{what}: number date is not created_at's")
    return o


# ---- the checks ----------------------------------------------------------------------------
async def check_signatures(be: Backends, data: ContractData) -> None:
    """Every Protocol method is there, async, with the Protocol's parameters (names, kinds,
    defaults); extra parameters have defaults."""
    for field, proto in PROTOCOLS.items():
        adapter = getattr(be, field)
        for name, spec in vars(proto).items():
            if name.startswith("_") or not inspect.isfunction(spec):
                continue
            what = f"{field}.{name}"
            method = getattr(adapter, name, None)
            _expect(callable(method), f"{what} is missing")
            assert method is not None
            _expect(inspect.iscoroutinefunction(method), f"{what} is not async")
            want = list(inspect.signature(spec).parameters.values())[1:]
            got = inspect.signature(method).parameters
            for p in want:
                q = got.get(p.name)
                _expect(q is not None, f"{what}: no parameter {p.name!r}")
                assert q is not None
                _expect(q.kind == p.kind, f"{what}: {p.name!r} is {q.kind}, not {p.kind}")
                if p.default is not p.empty:
                    _expect(q.default == p.default, f"{what}: {p.name!r} default {q.default!r}")
            positional = (inspect.Parameter.POSITIONAL_ONLY,
                          inspect.Parameter.POSITIONAL_OR_KEYWORD)
            order = [p.name for p in want if p.kind in positional]
            _expect([n for n, q in got.items() if q.kind in positional][:len(order)] == order,
                    f"{what}: positional parameters not in the Protocol's order")
            names = {p.name for p in want}
            extra = [n for n, q in got.items() if n not in names and q.default is q.empty
                     and q.kind not in (q.VAR_POSITIONAL, q.VAR_KEYWORD)]
            _expect(not extra, f"{what}: extra parameters without defaults {extra}")


async def check_fuel_verify(be: Backends, data: ContractData) -> None:
    """PIN or ID tail opens the card; wrong, missing or foreign secrets and unknown cards are
    False, never an error."""
    fuel, card, pin, tail = be.fuel, data.card_no, data.pin, data.id_tail
    cases: list[tuple[str, Call[bool], bool]] = [
        ("the right PIN", lambda: fuel.verify(card, pin=pin), True),
        ("the right ID tail", lambda: fuel.verify(card, id_tail=tail), True),
        ("a wrong PIN", lambda: fuel.verify(card, pin=_other(pin)), False),
        ("a wrong ID tail", lambda: fuel.verify(card, id_tail=_other(tail)), False),
        ("no secret", lambda: fuel.verify(card), False),
        ("empty secrets", lambda: fuel.verify(card, pin="", id_tail=""), False),
        ("a wrong PIN with the right ID tail",
         lambda: fuel.verify(card, pin=_other(pin), id_tail=tail), False),
        ("another card's PIN", lambda: fuel.verify(data.loss_card_no, pin=pin), False),
        ("an unknown card", lambda: fuel.verify(data.unknown_card_no, pin=pin), False),
    ]
    if tail.lower() != tail:
        cases.append(("the ID tail with a small x",
                      lambda: fuel.verify(card, id_tail=tail.lower()), True))
    for what, call, want in cases:
        got = await _answer(call(), f"fuel.verify with {what}")
        _expect(type(got) is bool, f"fuel.verify with {what}: answered {type(got).__name__}")
        _expect(got is want, f"fuel.verify with {what}: {got}, should be {want}")


async def check_fuel_card(be: Backends, data: ContractData) -> None:
    """``card``: the shape; the lost and cancelled cards read so; a sub-card's main card is a
    main card."""
    card = _check_card(await _answer(be.fuel.card(data.card_no), "fuel.card"), data.card_no,
                       "fuel.card", data)
    _expect(card.status == "normal", "contract data: card_no is not a normal card")
    for card_no, status in ((data.lost_card_no, "lost"), (data.cancelled_card_no, "cancelled")):
        other = _check_card(await _answer(be.fuel.card(card_no), f"fuel.card of the {status}"),
                            card_no, f"fuel.card of the {status} card", data)
        _expect(other.status == status, f"fuel.card: the {status} card reads {other.status!r}")
    if card.main_card_no is not None:
        main = await _answer(be.fuel.card(card.main_card_no), "fuel.card of the main card")
        _expect(main.is_main, "fuel.card: a sub-card's main card is not a main card")


async def check_fuel_not_found(be: Backends, data: ContractData) -> None:
    """An unknown card is ``NotFound`` for every card method, reads and writes."""
    fuel, unknown, today = be.fuel, data.unknown_card_no, data.today
    calls: list[tuple[str, Awaitable[Any]]] = [
        ("card", fuel.card(unknown)),
        ("transactions", fuel.transactions(unknown, data.history_start, data.history_end)),
        ("loads_pending", fuel.loads_pending(unknown)),
        ("report_loss", fuel.report_loss(unknown, idem_key=data.key("nf-loss"))),
        ("unfreeze", fuel.unfreeze(unknown, idem_key=data.key("nf-unfreeze"))),
        ("cancel", fuel.cancel(unknown, idem_key=data.key("nf-cancel"))),
        ("invoices.list_invoices", be.invoices.list_invoices(unknown)),
        ("invoices.issue", be.invoices.issue(
            unknown, start=today - timedelta(days=30), end=today, title="合同检查",
            email=data.email, idem_key=data.key("nf-issue"))),
    ]
    await _in_turn(calls, lambda c, what: _not_found(c, f"{what} of an unknown card", data))


async def check_fuel_transactions(be: Backends, data: ContractData) -> None:
    """Newest first, each in the window, both days inclusive in China time; none in a future
    window."""
    start, end = data.history_start, data.history_end
    txs = await _answer(be.fuel.transactions(data.card_no, start, end, limit=MAX_LIMIT),
                        "fuel.transactions")
    _is(txs, list, "fuel.transactions")
    _expect(len(txs) >= 2, "contract data: card_no has fewer than 2 transactions in history")
    for i, t in enumerate(txs):
        _check_transaction(t, f"fuel.transactions[{i}]")
        _expect(start <= _china_day(t.at) <= end, f"fuel.transactions[{i}] is outside the window")
    _expect([t.at for t in txs] == sorted((t.at for t in txs), reverse=True),
            "fuel.transactions: not newest first")
    for t in (txs[0], txs[-1]):
        day = _china_day(t.at)
        one_day = await _answer(be.fuel.transactions(data.card_no, day, day, limit=MAX_LIMIT),
                                "fuel.transactions of one day")
        _expect(t in one_day, "fuel.transactions of one day: misses a transaction of that day")
        _expect(all(_china_day(x.at) == day for x in one_day),
                "fuel.transactions of one day: holds another day's transaction")
    future = data.today + timedelta(days=1)
    _expect(await _answer(be.fuel.transactions(data.card_no, future, future + timedelta(1)),
                          "fuel.transactions of a future window") == [],
            "fuel.transactions of a future window is not empty")


async def check_fuel_transactions_limit(be: Backends, data: ContractData) -> None:
    """``limit`` is clamped to 1..50: the default is 5, 0 and -3 give the newest one."""
    card, start, end = data.card_no, data.history_start, data.history_end
    every = await _answer(be.fuel.transactions(card, start, end, limit=MAX_LIMIT),
                          "fuel.transactions")
    _expect(len(every) >= 2, "contract data: card_no has fewer than 2 transactions in history")
    default = await _answer(be.fuel.transactions(card, start, end), "fuel.transactions")
    _expect(default == every[:5], "fuel.transactions: the default limit is not the newest 5")
    for limit, want in ((1, every[:1]), (2, every[:2]), (0, every[:1]), (-3, every[:1])):
        got = await _answer(be.fuel.transactions(card, start, end, limit=limit),
                            f"fuel.transactions limit={limit}")
        _expect(got == want, f"fuel.transactions limit={limit}: {len(got)} answers, not "
                             f"the newest {len(want)}")
    huge = await _answer(be.fuel.transactions(card, start, end, limit=10**6),
                         "fuel.transactions limit=10**6")
    _expect(len(huge) <= MAX_LIMIT, f"fuel.transactions: more than {MAX_LIMIT} answers")
    if len(every) < MAX_LIMIT:
        _expect(huge == every, "fuel.transactions limit=10**6: not every transaction")


async def check_fuel_loads_pending(be: Backends, data: ContractData) -> None:
    """A ``Decimal`` of money waiting to be loaded; on the pending card more than 0 and cancel
    is refused, changing nothing."""
    _money(await _answer(be.fuel.loads_pending(data.card_no), "fuel.loads_pending"),
           "fuel.loads_pending")
    card_no = _needs(data.pending_load_card_no, "pending_load_card_no")
    pending = _money(await _answer(be.fuel.loads_pending(card_no), "fuel.loads_pending"),
                     "fuel.loads_pending", positive=True)
    before = await _answer(be.fuel.card(card_no), "fuel.card")
    _expect(before.status == "normal", "contract data: pending_load_card_no is not normal")
    await _refused(be.fuel.cancel(card_no, idem_key=data.key("pending-cancel")),
                   "fuel.cancel with 圈存 money waiting", data)
    _expect(await be.fuel.card(card_no) == before, "a refused cancel changed the card")
    _expect(await be.fuel.loads_pending(card_no) == pending, "a refused cancel changed 圈存")


async def check_fuel_loss_cycle(be: Backends, data: ContractData) -> None:
    """挂失 then 解挂 of ``loss_card_no``: idempotent (also concurrent), a second loss report
    refused, the loss key refused for 解挂, and a replayed loss report after 解挂 changes
    nothing. The card ends normal."""
    fuel, card_no = be.fuel, data.loss_card_no
    before = _check_card(await _answer(fuel.card(card_no), "fuel.card"), card_no, "fuel.card",
                         data)
    _expect(before.status == "normal", "contract data: loss_card_no is not a normal card")
    loss_key = data.key("loss")
    loss = await _at_once([fuel.report_loss(card_no, idem_key=loss_key) for _ in range(2)],
                          "fuel.report_loss")
    _is(loss, LossReport, "fuel.report_loss")
    _text(loss.ref, "LossReport.ref")
    _aware(loss.at, "LossReport.at")
    lost = await fuel.card(card_no)
    _expect(lost.status == "lost", f"after report_loss the card is {lost.status!r}")
    _expect(lost.balance == before.balance, "report_loss changed the balance")
    again = await _answer(fuel.report_loss(card_no, idem_key=loss_key), "fuel.report_loss")
    _expect(again == loss, "fuel.report_loss repeated with its key: another answer")
    await _refused(fuel.report_loss(card_no, idem_key=data.key("loss-again")),
                   "fuel.report_loss of a lost card", data)
    await _refused(fuel.unfreeze(card_no, idem_key=loss_key),
                   "fuel.unfreeze with the key of a loss report", data)
    _expect(await fuel.card(card_no) == lost, "a refused write changed the lost card")
    unfreeze_key = data.key("unfreeze")
    done = await _at_once([fuel.unfreeze(card_no, idem_key=unfreeze_key) for _ in range(2)],
                          "fuel.unfreeze")
    _is(done, Unfreeze, "fuel.unfreeze")
    _text(done.ref, "Unfreeze.ref")
    _aware(done.at, "Unfreeze.at")
    _expect(done.ref != loss.ref, "fuel.unfreeze answered the loss report's ref")
    after = await fuel.card(card_no)
    _expect(after.status == "normal", f"after unfreeze the card is {after.status!r}")
    replay = await _answer(fuel.report_loss(card_no, idem_key=loss_key), "fuel.report_loss")
    _expect(replay == loss, "a replayed loss report after 解挂: another answer")
    _expect(await fuel.card(card_no) == after, "a replayed loss report after 解挂 changed the card")
    _expect(await fuel.unfreeze(card_no, idem_key=unfreeze_key) == done,
            "fuel.unfreeze repeated with its key: another answer")
    await _refused(fuel.unfreeze(card_no, idem_key=data.key("unfreeze-again")),
                   "fuel.unfreeze of a normal card", data)
    _expect(await fuel.card(card_no) == after, "a refused unfreeze changed the card")


async def check_fuel_refusals(be: Backends, data: ContractData) -> None:
    """Writes a card's status forbids are refused and change nothing: a lost card is not
    reported lost or cancelled, a cancelled card takes no write, a normal card is not
    unfrozen."""
    fuel = be.fuel
    cases: list[tuple[str, str, Callable[[str, str], Awaitable[Any]]]] = [
        (data.lost_card_no, "report_loss of a lost card",
         lambda c, k: fuel.report_loss(c, idem_key=k)),
        (data.lost_card_no, "cancel of a lost card", lambda c, k: fuel.cancel(c, idem_key=k)),
        (data.cancelled_card_no, "report_loss of a cancelled card",
         lambda c, k: fuel.report_loss(c, idem_key=k)),
        (data.cancelled_card_no, "unfreeze of a cancelled card",
         lambda c, k: fuel.unfreeze(c, idem_key=k)),
        (data.cancelled_card_no, "cancel of a cancelled card",
         lambda c, k: fuel.cancel(c, idem_key=k)),
        (data.card_no, "unfreeze of a normal card", lambda c, k: fuel.unfreeze(c, idem_key=k)),
    ]
    for card_no, what, write in cases:
        before = await _answer(fuel.card(card_no), "fuel.card")
        await _refused(write(card_no, data.key("refused")), f"fuel.{what}", data)
        _expect(await fuel.card(card_no) == before, f"a refused {what} changed the card")


async def check_fuel_unfreeze_frozen(be: Backends, data: ContractData) -> None:
    """解冻 of the frozen card: normal after, idempotent, then refused (one use)."""
    card_no = _needs(data.frozen_card_no, "frozen_card_no")
    before = await _answer(be.fuel.card(card_no), "fuel.card")
    _expect(before.status == "frozen", "contract data: frozen_card_no is not frozen")
    k = data.key("unfreeze-frozen")
    done = await _at_once([be.fuel.unfreeze(card_no, idem_key=k) for _ in range(2)],
                          "fuel.unfreeze of a frozen card")
    _is(done, Unfreeze, "fuel.unfreeze")
    after = await be.fuel.card(card_no)
    _expect(after.status == "normal" and after.balance == before.balance,
            "after unfreeze the frozen card is not normal with its balance")
    _expect(await be.fuel.unfreeze(card_no, idem_key=k) == done,
            "fuel.unfreeze repeated with its key: another answer")
    await _refused(be.fuel.unfreeze(card_no, idem_key=data.key("unfreeze-frozen-again")),
                   "fuel.unfreeze of an unfrozen card", data)


async def check_fuel_cancel(be: Backends, data: ContractData) -> None:
    """销户 refunds the balance and leaves 0; idempotent (also concurrent); then every write is
    refused, its key too for another write (one use)."""
    fuel = be.fuel
    card_no = _needs(data.cancel_card_no, "cancel_card_no")
    before = await _answer(fuel.card(card_no), "fuel.card")
    _expect(before.status == "normal", "contract data: cancel_card_no is not a normal card")
    _expect(await fuel.loads_pending(card_no) == 0, "contract data: cancel_card_no has 圈存")
    k = data.key("cancel")
    done = await _at_once([fuel.cancel(card_no, idem_key=k) for _ in range(2)], "fuel.cancel")
    _is(done, Cancellation, "fuel.cancel")
    _text(done.ref, "Cancellation.ref")
    _aware(done.at, "Cancellation.at", optional=True)
    _expect(_money(done.refund, "Cancellation.refund") == before.balance,
            f"fuel.cancel refunded {done.refund}, the balance was {before.balance}")
    after = _check_card(await fuel.card(card_no), card_no, "fuel.card", data)
    _expect(after.status == "cancelled" and after.balance == 0,
            "after cancel the card is not cancelled with balance 0")
    _expect(await fuel.cancel(card_no, idem_key=k) == done,
            "fuel.cancel repeated with its key: another answer")
    await _refused(fuel.cancel(card_no, idem_key=data.key("cancel-again")),
                   "fuel.cancel of a cancelled card", data)
    await _refused(fuel.report_loss(card_no, idem_key=k),
                   "fuel.report_loss with the key of a cancellation", data)
    _expect(await fuel.card(card_no) == after, "a refused write changed the cancelled card")


async def check_invoices_list(be: Backends, data: ContractData) -> None:
    """``list_invoices``: a list of well-formed invoices (an empty list is an answer)."""
    for card_no in (data.card_no, data.invoiced_card_no):
        if card_no is None:
            continue
        invs = await _answer(be.invoices.list_invoices(card_no), "invoices.list_invoices")
        _is(invs, list, "invoices.list_invoices")
        for i, inv in enumerate(invs):
            _check_invoice(inv, f"invoices.list_invoices[{i}]")


async def check_invoice_refusals(be: Backends, data: ContractData) -> None:
    """``issue`` refuses a period ending before it starts, a blank title, a bad e-mail and a
    period without fuel bought; ``resend`` an unknown invoice (``NotFound``) and a bad
    e-mail."""
    inv, card, today = be.invoices, data.card_no, data.today
    future = today + timedelta(days=1), today + timedelta(days=2)
    before = await _answer(inv.list_invoices(card), "invoices.list_invoices")
    bad: list[tuple[str, Awaitable[Invoice]]] = [
        ("a period ending before it starts", inv.issue(
            card, start=future[1], end=future[0], title="合同检查", email=None,
            idem_key=data.key("inv-dates"))),
        ("a blank title", inv.issue(card, start=future[0], end=future[1], title="  ",
                                    email=None, idem_key=data.key("inv-title"))),
        ("a bad e-mail", inv.issue(card, start=future[0], end=future[1], title="合同检查",
                                   email="not-an-email", idem_key=data.key("inv-email"))),
        ("a period without fuel", inv.issue(card, start=future[0], end=future[1],
                                            title="合同检查", email=None,
                                            idem_key=data.key("inv-empty"))),
    ]
    await _in_turn(bad, lambda c, what: _refused(c, f"invoices.issue of {what}", data))
    _expect(await inv.list_invoices(card) == before, "a refused invoices.issue made an invoice")
    await _not_found(inv.resend(data.unknown_invoice_ref, data.email, data.key("inv-nf")),
                     "invoices.resend of an unknown invoice", data)
    if before:
        await _refused(inv.resend(before[0].ref, "not-an-email", data.key("inv-bad-mail")),
                       "invoices.resend to a bad e-mail", data)


async def check_invoice_issue(be: Backends, data: ContractData) -> None:
    """``issue`` over a period with fuel: validated first, then one invoice, idempotent (also
    concurrent), listed, ``sent`` to the e-mail; the period is refused a second time and the key
    for another card (one use)."""
    inv = be.invoices
    card = _needs(data.invoice_card_no, "invoice_card_no")
    start = _needs(data.invoice_start, "invoice_start")
    end = _needs(data.invoice_end, "invoice_end")
    before = await _answer(inv.list_invoices(card), "invoices.list_invoices")
    await _refused(inv.issue(card, start=end + timedelta(days=1), end=start, title="合同检查",
                             email=None, idem_key=data.key("issue-dates")),
                   "invoices.issue of a period ending before it starts", data)
    await _refused(inv.issue(card, start=start, end=end, title=" ", email=None,
                             idem_key=data.key("issue-title")),
                   "invoices.issue with a blank title", data)
    await _refused(inv.issue(card, start=start, end=end, title="合同检查", email="a@b",
                             idem_key=data.key("issue-email")),
                   "invoices.issue to a bad e-mail", data)
    _expect(await inv.list_invoices(card) == before, "a refused invoices.issue made an invoice")
    k = data.key("issue")
    made = await _at_once(
        [inv.issue(card, start=start, end=end, title="合同检查", email=data.email, idem_key=k)
         for _ in range(2)], "invoices.issue")
    _check_invoice(made, "invoices.issue")
    _expect(made.status == "sent" and made.email == data.email,
            "invoices.issue with an e-mail: not sent to it")
    _expect((made.start, made.end) == (start, end), "invoices.issue: another period")
    _expect(made.title == "合同检查", f"invoices.issue: title {made.title!r}")
    _expect(await inv.issue(card, start=start, end=end, title="合同检查", email=data.email,
                            idem_key=k) == made, "invoices.issue repeated with its key: another")
    after = await inv.list_invoices(card)
    _expect(len(after) == len(before) + 1 and made.ref in [i.ref for i in after],
            "invoices.list_invoices: not exactly one more invoice, the one issued")
    await _refused(inv.issue(card, start=start, end=end, title="合同检查", email=None,
                             idem_key=data.key("issue-again")),
                   "invoices.issue of an invoiced period", data)
    await _refused(inv.issue(data.card_no, start=start, end=end, title="合同检查", email=None,
                             idem_key=k), "invoices.issue with another card's key", data)
    _expect(await inv.list_invoices(card) == after, "a refused invoices.issue made an invoice")


async def check_invoice_resend(be: Backends, data: ContractData) -> None:
    """An invoiced period is refused again; ``resend`` goes to the new e-mail, ``sent``,
    idempotent."""
    inv = be.invoices
    card = _needs(data.invoiced_card_no, "invoiced_card_no")
    invs = await _answer(inv.list_invoices(card), "invoices.list_invoices")
    done = next((i for i in invs if i.start is not None and i.end is not None), None)
    _expect(done, "contract data: invoiced_card_no has no invoice with a period")
    assert done is not None and done.start is not None and done.end is not None
    await _refused(inv.issue(card, start=done.start, end=done.end, title="合同检查", email=None,
                             idem_key=data.key("resend-issue")),
                   "invoices.issue of an invoiced period", data)
    k = data.key("resend")
    sent = _check_invoice(await _answer(inv.resend(done.ref, data.email, k), "invoices.resend"),
                          "invoices.resend")
    _expect(sent.ref == done.ref and sent.amount == done.amount,
            "invoices.resend answered another invoice")
    _expect(sent.status == "sent" and sent.email == data.email,
            "invoices.resend: not sent to the e-mail given")
    _expect(await inv.resend(done.ref, data.email, k) == sent,
            "invoices.resend repeated with its key: another answer")
    listed = {i.ref: i for i in await inv.list_invoices(card)}
    _expect(listed.get(done.ref) == sent, "invoices.list_invoices: not as re-sent")


async def check_gas_verify(be: Backends, data: ContractData) -> None:
    """ID tail or phone tail opens the account; every one given must match; none given, a
    wrong one or an unknown account is False, never an error."""
    gas, acc, tail, phone = be.gas, data.gas_account_no, data.gas_id_tail, data.gas_phone_tail
    cases: list[tuple[str, Call[bool], bool]] = [
        ("the right ID tail", lambda: gas.verify(acc, id_tail=tail), True),
        ("the right phone tail", lambda: gas.verify(acc, phone_tail=phone), True),
        ("both right", lambda: gas.verify(acc, id_tail=tail, phone_tail=phone), True),
        ("a wrong ID tail", lambda: gas.verify(acc, id_tail=_other(tail)), False),
        ("a wrong phone tail", lambda: gas.verify(acc, phone_tail=_other(phone)), False),
        ("the right ID tail, a wrong phone tail",
         lambda: gas.verify(acc, id_tail=tail, phone_tail=_other(phone)), False),
        ("a wrong ID tail, the right phone tail",
         lambda: gas.verify(acc, id_tail=_other(tail), phone_tail=phone), False),
        ("no secret", lambda: gas.verify(acc), False),
        ("empty secrets", lambda: gas.verify(acc, id_tail="", phone_tail=""), False),
        ("an unknown account",
         lambda: gas.verify(data.unknown_account_no, id_tail=tail, phone_tail=phone), False),
    ]
    if tail.lower() != tail:
        cases.append(("the ID tail with a small x",
                      lambda: gas.verify(acc, id_tail=tail.lower()), True))
    for what, call, want in cases:
        got = await _answer(call(), f"gas.verify with {what}")
        _expect(type(got) is bool, f"gas.verify with {what}: answered {type(got).__name__}")
        _expect(got is want, f"gas.verify with {what}: {got}, should be {want}")


async def check_gas_account(be: Backends, data: ContractData) -> None:
    """``account``: the shape, names and addresses masked; unknown: ``NotFound``."""
    acc = await _answer(be.gas.account(data.gas_account_no), "gas.account")
    _is(acc, GasAccount, "gas.account")
    _expect(acc.account_no == data.gas_account_no, "gas.account: another account_no")
    _masked(acc.holder_masked, data.gas_holder, "gas.account.holder_masked")
    _text(acc.address_masked, "gas.account.address_masked")
    _money(acc.balance, "gas.account.balance")
    _money(acc.arrears, "gas.account.arrears")
    _expect(acc.status in GAS_ACCOUNT_STATUSES, f"gas.account: status {acc.status!r}")
    await _not_found(be.gas.account(data.unknown_account_no), "gas.account of an unknown", data)


async def check_gas_recharges(be: Backends, data: ContractData) -> None:
    """``recharges``: newest first, well formed, ``limit`` clamped to 1..50 (default 5);
    unknown: ``NotFound``."""
    gas, acc = be.gas, data.gas_account_no
    every = await _answer(gas.recharges(acc, limit=MAX_LIMIT), "gas.recharges")
    _is(every, list, "gas.recharges")
    _expect(len(every) >= 2, "contract data: gas_account_no has fewer than 2 recharges")
    for i, r in enumerate(every):
        _check_recharge(r, f"gas.recharges[{i}]")
    _expect([r.at for r in every] == sorted((r.at for r in every), reverse=True),
            "gas.recharges: not newest first")
    _expect(await _answer(gas.recharges(acc), "gas.recharges") == every[:5],
            "gas.recharges: the default limit is not the newest 5")
    for limit, want in ((1, every[:1]), (0, every[:1]), (-3, every[:1])):
        got = await _answer(gas.recharges(acc, limit=limit), f"gas.recharges limit={limit}")
        _expect(got == want, f"gas.recharges limit={limit}: {len(got)} answers")
    huge = await _answer(gas.recharges(acc, limit=10**6), "gas.recharges limit=10**6")
    _expect(len(huge) <= MAX_LIMIT, f"gas.recharges: more than {MAX_LIMIT} answers")
    if len(every) < MAX_LIMIT:
        _expect(huge == every, "gas.recharges limit=10**6: not every recharge")
    await _not_found(gas.recharges(data.unknown_account_no), "gas.recharges of an unknown", data)


async def check_gas_meter(be: Backends, data: ContractData) -> None:
    """``meter``: the shape; unknown account: ``NotFound``."""
    m = await _answer(be.gas.meter(data.gas_account_no), "gas.meter")
    _is(m, Meter, "gas.meter")
    _text(m.meter_no, "gas.meter.meter_no")
    _expect(m.kind in METER_KINDS, f"gas.meter: kind {m.kind!r}")
    _expect(m.status in METER_STATUSES, f"gas.meter: status {m.status!r}")
    if m.last_reading is not None:
        _expect(isinstance(m.last_reading, Decimal) and m.last_reading >= 0,
                f"gas.meter.last_reading {m.last_reading!r}")
    _aware(m.last_read_at, "gas.meter.last_read_at", optional=True)
    await _not_found(be.gas.meter(data.unknown_account_no), "gas.meter of an unknown", data)


async def check_work_orders(be: Backends, data: ContractData) -> None:
    """``create``: numbered, echoing kind/line/priority, idempotent (also concurrent); ``get``
    finds it; an emergency is promised no later than a normal order; unknown: ``NotFound``."""
    wo = be.work_orders
    k = data.key("work-order")

    def create(priority: Any, key: str) -> Awaitable[WorkOrder]:
        return wo.create(kind=WORK_ORDER_KIND, line="gas", subject="合同检查：燃气表故障",
                         detail={"contract_check": True, "现象": "表显示E3"},
                         account=data.gas_account_no, phone="13800138000", priority=priority,
                         idem_key=key)

    order = await _at_once([create("normal", k) for _ in range(3)], "work_orders.create",
                           lambda o: o.number)
    _check_order(order, "work_orders.create", data.today)
    _expect((order.kind, order.line, order.priority) == (WORK_ORDER_KIND, "gas", "normal"),
            "work_orders.create: kind, line or priority not as asked")
    _expect(order.status != "closed", "work_orders.create: a new order is closed")
    again = await _answer(create("normal", k), "work_orders.create")
    _expect(again.number == order.number, "work_orders.create repeated with its key: another")
    got = _check_order(await _answer(wo.get(order.number), "work_orders.get"),
                       "work_orders.get", data.today)
    _expect((got.number, got.kind, got.line, got.priority, got.created_at)
            == (order.number, order.kind, order.line, order.priority, order.created_at),
            "work_orders.get: not the order created")
    urgent = _check_order(await _answer(create("emergency", data.key("work-order-sos")),
                                        "work_orders.create"), "work_orders.create", data.today)
    _expect(urgent.number != order.number, "two work orders with one number")
    _expect(urgent.priority == "emergency", "work_orders.create: priority not as asked")
    _expect(urgent.eta_hours <= order.eta_hours,
            "an emergency is promised later than a normal order")
    await _not_found(wo.get(data.unknown_work_order), "work_orders.get of an unknown", data)


async def check_caller_bugs(be: Backends, data: ContractData) -> None:
    """A blank ``idem_key`` on any write, and a work order with an unknown line or priority or
    an empty kind or subject, are a ``ValueError`` before anything is looked up."""
    fuel, inv, card = be.fuel, be.invoices, data.cancelled_card_no
    future = data.today + timedelta(days=1)
    order: dict[str, Any] = {"kind": WORK_ORDER_KIND, "line": "gas", "subject": "合同检查",
                             "detail": {}, "idem_key": data.key("bug")}
    calls: list[tuple[str, Awaitable[Any]]] = []
    for blank in ("", "  "):
        calls += [
            ("fuel.report_loss", fuel.report_loss(card, idem_key=blank)),
            ("fuel.unfreeze", fuel.unfreeze(card, idem_key=blank)),
            ("fuel.cancel", fuel.cancel(card, idem_key=blank)),
            ("invoices.issue", inv.issue(data.card_no, start=future, end=future, title="x",
                                         email=None, idem_key=blank)),
            ("invoices.resend", inv.resend(data.unknown_invoice_ref, data.email, blank)),
            ("work_orders.create", be.work_orders.create(**{**order, "idem_key": blank})),
        ]
    calls += [
        ("work_orders.create with line 'water'",
         be.work_orders.create(**{**order, "line": "water"})),
        ("work_orders.create with priority 'asap'",
         be.work_orders.create(**{**order, "priority": "asap"})),
        ("work_orders.create with an empty kind", be.work_orders.create(**{**order, "kind": ""})),
        ("work_orders.create with an empty subject",
         be.work_orders.create(**{**order, "subject": ""})),
    ]
    await _in_turn(calls, _caller_bug)


async def check_odd_input(be: Backends, data: ContractData) -> None:
    """Odd numbers (empty, letters, 64 digits, quotes, Chinese numerals) are unknown numbers:
    ``NotFound`` (``verify``: False), never a driver error."""
    for odd in ODD_NUMBERS:
        label = f"{odd[:12]!r}"

        async def not_found(call: Awaitable[Any], what: str, label: str = label) -> None:
            await _not_found(call, f"{what} of {label}", data)

        await _in_turn([
            ("fuel.card", be.fuel.card(odd)),
            ("fuel.transactions",
             be.fuel.transactions(odd, data.history_start, data.history_end)),
            ("fuel.loads_pending", be.fuel.loads_pending(odd)),
            ("invoices.list_invoices", be.invoices.list_invoices(odd)),
            ("invoices.resend", be.invoices.resend(odd, data.email, data.key("odd"))),
            ("gas.account", be.gas.account(odd)),
            ("gas.recharges", be.gas.recharges(odd)),
            ("gas.meter", be.gas.meter(odd)),
            ("work_orders.get", be.work_orders.get(odd)),
        ], not_found)
        fuel_ok = await _answer(be.fuel.verify(odd, pin=data.pin), f"fuel.verify of {label}")
        _expect(fuel_ok is False, f"fuel.verify of {label}: {fuel_ok!r}, should be False")
        gas_ok = await _answer(be.gas.verify(odd, id_tail=data.gas_id_tail),
                               f"gas.verify of {label}")
        _expect(gas_ok is False, f"gas.verify of {label}: {gas_ok!r}, should be False")


async def check_unreachable(be: Backends, data: ContractData) -> None:
    """Run on an adapter that cannot reach its system: every method raises
    ``BackendUnavailable`` with a speakable message, no secrets, nothing else."""
    today = data.today
    calls: list[tuple[str, Awaitable[Any]]] = [
        ("fuel.verify", be.fuel.verify(data.card_no, pin=data.pin)),
        ("fuel.card", be.fuel.card(data.card_no)),
        ("fuel.transactions", be.fuel.transactions(data.card_no, today, today)),
        ("fuel.report_loss", be.fuel.report_loss(data.card_no, idem_key=data.key("down"))),
        ("fuel.unfreeze", be.fuel.unfreeze(data.card_no, idem_key=data.key("down"))),
        ("fuel.cancel", be.fuel.cancel(data.card_no, idem_key=data.key("down"))),
        ("fuel.loads_pending", be.fuel.loads_pending(data.card_no)),
        ("invoices.issue", be.invoices.issue(
            data.card_no, start=today, end=today, title="合同检查", email=data.email,
            idem_key=data.key("down"))),
        ("invoices.resend", be.invoices.resend(data.unknown_invoice_ref, data.email,
                                               data.key("down"))),
        ("invoices.list_invoices", be.invoices.list_invoices(data.card_no)),
        ("gas.verify", be.gas.verify(data.gas_account_no, id_tail=data.gas_id_tail)),
        ("gas.account", be.gas.account(data.gas_account_no)),
        ("gas.recharges", be.gas.recharges(data.gas_account_no)),
        ("gas.meter", be.gas.meter(data.gas_account_no)),
        ("work_orders.create", be.work_orders.create(
            kind=WORK_ORDER_KIND, line="gas", subject="合同检查", detail={},
            idem_key=data.key("down"))),
        ("work_orders.get", be.work_orders.get(data.unknown_work_order)),
    ]
    async def down(call: Awaitable[Any], what: str) -> None:
        exc = await _raises(call, f"{what} with the system down", BackendUnavailable)
        assert isinstance(exc, BackendUnavailable)
        _speakable(exc, f"{what} with the system down", data)

    await _in_turn(calls, down)


CHECKS: tuple[Check, ...] = (
    check_signatures,
    check_fuel_verify,
    check_fuel_card,
    check_fuel_not_found,
    check_fuel_transactions,
    check_fuel_transactions_limit,
    check_fuel_loads_pending,
    check_fuel_loss_cycle,
    check_fuel_refusals,
    check_fuel_unfreeze_frozen,
    check_fuel_cancel,
    check_invoices_list,
    check_invoice_refusals,
    check_invoice_issue,
    check_invoice_resend,
    check_gas_verify,
    check_gas_account,
    check_gas_recharges,
    check_gas_meter,
    check_work_orders,
    check_caller_bugs,
    check_odd_input,
)
"""The checks on a working adapter (``check_unreachable`` takes an unreachable one)."""


def check_name(check: Check) -> str:
    return getattr(check, "__name__", repr(check)).removeprefix("check_")


async def run_contract(
    backends: Backends, data: ContractData, *, unreachable: Backends | None = None
) -> dict[str, str]:
    """Every check in turn (without pytest): ``{name: "ok" | "skipped: ..." | "FAILED: ..."}``.
    ``unreachable``: the adapter pointed at a closed port, for ``check_unreachable``."""
    report: dict[str, str] = {}
    runs: list[tuple[Check, Backends | None]] = [(c, backends) for c in CHECKS]
    runs.append((check_unreachable, unreachable))
    for check, be in runs:
        name = check_name(check)
        if be is None:
            report[name] = "skipped: no unreachable back end given"
            continue
        try:
            await check(be, data)
        except NotApplicable as exc:
            report[name] = f"skipped: {exc}"
        except Exception as exc:
            report[name] = f"FAILED: {_describe(exc)}"
        else:
            report[name] = "ok"
    return report


async def _run_in_pytest(check: Check, backends: Backends, data: ContractData) -> None:
    try:
        await check(backends, data)
    except NotApplicable as exc:
        import pytest  # only under pytest: the server does not need it

        pytest.skip(str(exc))


class BackendContract:
    """The contract as pytest tests: subclass it as ``TestSomething(BackendContract)`` in a
    module that provides the fixtures ``backends`` and ``contract_data`` (and optionally a plain
    fixture ``unreachable_backends``). One test per check: ``test_contract[fuel_verify]``..."""

    def pytest_generate_tests(self, metafunc: Any) -> None:
        if "contract_check" in metafunc.fixturenames:
            metafunc.parametrize("contract_check", CHECKS, ids=[check_name(c) for c in CHECKS])

    async def test_contract(
        self, contract_check: Check, backends: Backends, contract_data: ContractData
    ) -> None:
        await _run_in_pytest(contract_check, backends, contract_data)

    async def test_unreachable(self, request: Any, contract_data: ContractData) -> None:
        import pytest

        try:
            unreachable = request.getfixturevalue("unreachable_backends")
        except pytest.FixtureLookupError:
            pytest.skip("no unreachable_backends fixture")
        await _run_in_pytest(check_unreachable, unreachable, contract_data)
