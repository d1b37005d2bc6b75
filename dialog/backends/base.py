"""Business back-end interfaces the scenario bots call: one Protocol per domain.

The hotline's real billing systems sit behind these adapters. ``dialog.backends.demo`` implements
them on PostgreSQL tables with seed data (``dialog.backends.seed``) so every bot really reads and
writes; a production adapter implements the same Protocols against the company's systems.

Rules shared by every adapter:

- Card numbers, account numbers, PINs and ID tails are secrets in logs: never log them clear.
  Adapters compare PINs and ID tails by salted hash only.
- Every failure the caller should hear is a ``BackendError``; its ``message_zh`` is a complete
  Chinese sentence the IVR can speak as is. ``NotFound`` is a ``BackendError`` too.
- Writes take an ``idem_key`` (e.g. ``f"{call_id}:{step}"``): repeating a write with the same key
  returns the first result and changes nothing (a retried step never reports a card lost twice).
- A call the bot got wrong (a blank ``idem_key``, a line or priority outside the vocabulary, an
  empty work-order kind or subject) is a ``ValueError``: a bug to fix, not a sentence to speak.
- ``limit`` is clamped to 1..50.

``dialog.backends.contract`` checks these rules on any adapter: a production adapter runs it
against its test accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from ivr.core.lines import Line

CardStatus = Literal["normal", "lost", "frozen", "cancelled"]
TransactionKind = Literal["fuel", "load", "recharge"]
Priority = Literal["normal", "urgent", "emergency"]
MeterKind = Literal["ic_card", "smart", "mechanical"]

CARD_STATUSES: tuple[str, ...] = ("normal", "lost", "frozen", "cancelled")
TRANSACTION_KINDS: tuple[str, ...] = ("fuel", "load", "recharge")
PRIORITIES: tuple[str, ...] = ("normal", "urgent", "emergency")
METER_KINDS: tuple[str, ...] = ("ic_card", "smart", "mechanical")
INVOICE_STATUSES: tuple[str, ...] = ("issued", "sent")
GAS_ACCOUNT_STATUSES: tuple[str, ...] = ("normal", "arrears", "suspended", "closed")
METER_STATUSES: tuple[str, ...] = ("normal", "faulty", "valve_closed", "low_battery")
WORK_ORDER_STATUSES: tuple[str, ...] = ("open", "dispatched", "closed")

# spoken forms of the codes above, for prompts
CARD_STATUS_ZH = {"normal": "正常", "lost": "已挂失", "frozen": "已冻结", "cancelled": "已销户"}
TRANSACTION_KIND_ZH = {"fuel": "加油", "load": "圈存", "recharge": "充值"}
METER_KIND_ZH = {"ic_card": "IC卡表", "smart": "物联网智能表", "mechanical": "机械表"}
METER_STATUS_ZH = {
    "normal": "正常", "faulty": "故障", "valve_closed": "阀门关闭", "low_battery": "电池电量低",
}
GAS_ACCOUNT_STATUS_ZH = {
    "normal": "正常", "arrears": "欠费", "suspended": "停气", "closed": "已销户",
}
CHANNEL_ZH = {
    "wechat": "微信", "alipay": "支付宝", "bank": "银行代扣", "counter": "营业厅",
    "app": "手机客户端",
}


# ---- errors ----------------------------------------------------------------------------------
class BackendError(Exception):
    """A business operation failed or was refused. ``message_zh`` can be spoken to the caller;
    ``detail`` (English, no secrets) is for logs. ``str(exc)`` is the detail, else the message."""

    def __init__(self, message_zh: str, *, detail: str = "") -> None:
        super().__init__(detail or message_zh)
        self.message_zh = message_zh
        self.detail = detail


class NotFound(BackendError, LookupError):
    """No card, account, invoice or work order with that number."""


class BackendUnavailable(BackendError):
    """The back-end system did not answer (database down, timeout)."""


# ---- results -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FuelCard:
    card_no: str
    holder_masked: str
    status: CardStatus
    balance: Decimal
    points: int
    is_main: bool
    main_card_no: str | None = None  # a sub-card's main card


@dataclass(frozen=True, slots=True)
class Transaction:
    at: datetime
    station: str
    amount: Decimal  # positive; ``kind`` says which way the money went
    kind: TransactionKind
    liters: Decimal | None = None  # fuel only


@dataclass(frozen=True, slots=True)
class LossReport:
    ref: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Unfreeze:
    ref: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Cancellation:
    ref: str
    refund: Decimal
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Invoice:
    ref: str
    amount: Decimal
    status: str  # issued | sent (e-mailed)
    start: date | None = None
    end: date | None = None
    title: str | None = None
    at: datetime | None = None
    email: str | None = None  # where the e-invoice goes; a secret in logs (mask it)


@dataclass(frozen=True, slots=True)
class GasAccount:
    account_no: str
    holder_masked: str
    address_masked: str
    balance: Decimal
    arrears: Decimal
    status: str  # normal | arrears | suspended | closed


@dataclass(frozen=True, slots=True)
class Recharge:
    ref: str
    at: datetime
    amount: Decimal
    channel: str  # wechat | alipay | bank | counter | app (CHANNEL_ZH speaks it)
    credited: bool  # reached the gas account
    written_to_card: bool  # IC-card meters: written onto the card (smart meters: delivered)


@dataclass(frozen=True, slots=True)
class Meter:
    meter_no: str
    kind: MeterKind
    status: str  # normal | faulty | valve_closed | low_battery
    last_reading: Decimal | None
    last_read_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WorkOrder:
    number: str  # GD + yyyymmdd + 4 digits
    status: str  # open | dispatched | closed
    eta_hours: int
    kind: str = ""
    line: str = "general"
    priority: str = "normal"
    created_at: datetime | None = None


# ---- interfaces ----------------------------------------------------------------------------
class FuelCardSystem(Protocol):
    async def verify(
        self, card_no: str, *, pin: str | None = None, id_tail: str | None = None
    ) -> bool:
        """True when ``pin`` (or the last 6 of the holder's ID) matches; False otherwise,
        also for an unknown card (a caller cannot probe which numbers exist). A wrong ``pin``
        is not rescued by a right ``id_tail``."""
        ...

    async def card(self, card_no: str) -> FuelCard: ...

    async def transactions(
        self, card_no: str, start: date, end: date, limit: int = 5
    ) -> list[Transaction]:
        """Newest first, ``start`` and ``end`` inclusive (China time)."""
        ...

    async def report_loss(self, card_no: str, *, idem_key: str) -> LossReport: ...

    async def unfreeze(self, card_no: str, *, idem_key: str) -> Unfreeze: ...

    async def cancel(self, card_no: str, *, idem_key: str) -> Cancellation: ...

    async def loads_pending(self, card_no: str) -> Decimal:
        """Money assigned to the card but not yet loaded onto its chip (圈存) at a station."""
        ...


class InvoiceSystem(Protocol):
    async def issue(
        self,
        card_no: str,
        *,
        start: date,
        end: date,
        title: str,
        email: str | None,
        idem_key: str,
    ) -> Invoice: ...

    async def resend(self, ref: str, email: str, idem_key: str) -> Invoice: ...

    async def list_invoices(self, card_no: str) -> list[Invoice]: ...


class GasBilling(Protocol):
    async def verify(
        self, account_no: str, *, id_tail: str | None = None, phone_tail: str | None = None
    ) -> bool:
        """True when at least one of ``id_tail``/``phone_tail`` is given and every one given
        matches; False otherwise, also for an unknown account."""
        ...

    async def account(self, account_no: str) -> GasAccount: ...

    async def recharges(self, account_no: str, limit: int = 5) -> list[Recharge]:
        """Newest first."""
        ...

    async def meter(self, account_no: str) -> Meter: ...


VerifyKind = Literal["fuel_card", "gas_account"]
VERIFY_KINDS: tuple[str, ...] = ("fuel_card", "gas_account")


@dataclass(frozen=True, slots=True)
class LockState:
    """Where one card or account stands with the verification lockout: ``failures`` counted in
    the current window, and ``locked_until`` while it is locked."""

    locked: bool
    failures: int = 0
    locked_until: datetime | None = None


class VerificationLocks(Protocol):
    """Failed verifications per card (``fuel_card``) and per gas account (``gas_account``),
    across calls. ``key`` is the card or account number as the caller gave it; an
    implementation stores only a hash of it. Unknown numbers count like known ones, so a lock
    never tells a caller whether a number exists."""

    async def locked(self, kind: VerifyKind, key: str) -> LockState:
        """The lock state now; checking it changes nothing."""
        ...

    async def failed(self, kind: VerifyKind, key: str) -> LockState:
        """Count one failed verification; the state after it (locked when this was the last
        failure allowed)."""
        ...

    async def succeeded(self, kind: VerifyKind, key: str) -> None:
        """A verification passed: forget the failures (a lock still in force stays)."""
        ...


class WorkOrders(Protocol):
    async def create(
        self,
        *,
        kind: str,
        line: Line,
        subject: str,
        detail: dict[str, Any],
        account: str | None = None,
        card: str | None = None,
        phone: str | None = None,
        priority: Priority = "normal",
        idem_key: str,
    ) -> WorkOrder: ...

    async def get(self, number: str) -> WorkOrder: ...


@dataclass(frozen=True, slots=True)
class Backends:
    fuel: FuelCardSystem
    invoices: InvoiceSystem
    gas: GasBilling
    work_orders: WorkOrders
    # the verification lockout (not a business system: the IVR's own record); None turns the
    # lockout off, for unit tests on fakes only: ``demo_backends`` always sets one
    locks: VerificationLocks | None = None
