"""Demo business back end on PostgreSQL: fuel cards and invoices here, gas billing and work
orders in ``demo_gas``. ``demo_backends(sessions)`` bundles all four, with the verification
lockout (``dialog.backends.locks``).

Card rules (as a fuel-card company applies them):

- 挂失 ``report_loss``: a normal or frozen card becomes ``lost``; a card already lost or
  cancelled is refused.
- 解挂/解冻 ``unfreeze``: a lost or frozen card becomes ``normal``; other statuses are refused.
- 销户 ``cancel``: only a ``normal`` card, with no money waiting to be loaded (圈存), and for a
  main card no sub-card still open. The balance is refunded (a sub-card's balance goes back to
  its main card) and the card becomes ``cancelled``.
- Invoices: fuel purchases of the period, at most one invoice per period (no overlaps).

Every write locks the card row, so two calls about one card are serialised, and keeps its
``idem_key`` (unique) so a repeated request returns the first result.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from dialog.backends._pg import (
    IDEM_REUSED_ZH,
    Clock,
    PgAdapter,
    clamp_limit,
    day_range,
    matches,
    require_key,
)
from dialog.backends.base import (
    BackendError,
    Backends,
    Cancellation,
    CardStatus,
    FuelCard,
    Invoice,
    LossReport,
    NotFound,
    Transaction,
    TransactionKind,
    Unfreeze,
)
from dialog.backends.demo_gas import DemoGasBilling, DemoWorkOrders
from dialog.backends.hashing import mask_name
from dialog.backends.locks import LockPolicy, PgVerificationLocks
from dialog.backends.tables import (
    REF_SEQ,
    CardEventRow,
    FuelCardRow,
    FuelTransactionRow,
    InvoiceRow,
)
from ivr.core.storage.db import SessionFactory

CARD_NOT_FOUND_ZH = "没有查到这张加油卡，请核对卡号后重新输入。"
ZERO = Decimal("0.00")


class DemoFuelCards(PgAdapter):
    """``FuelCardSystem`` on the ``fuel_cards``, ``fuel_transactions`` and ``card_events``
    tables."""

    async def verify(
        self, card_no: str, *, pin: str | None = None, id_tail: str | None = None
    ) -> bool:
        if not pin and not id_tail:
            return False
        async with self._tx("fuel.verify") as s:
            row = (await s.execute(
                select(FuelCardRow.pin_hash, FuelCardRow.id_tail_hash)
                .where(FuelCardRow.card_no == card_no)
            )).one_or_none()
        if row is None:
            return False
        if pin:
            return await matches(pin, row.pin_hash)
        return await matches(id_tail, row.id_tail_hash)

    async def card(self, card_no: str) -> FuelCard:
        async with self._tx("fuel.card") as s:
            return _card(await _get_card(s, card_no))

    async def transactions(
        self, card_no: str, start: date, end: date, limit: int = 5
    ) -> list[Transaction]:
        lo, hi = day_range(start, end)
        async with self._tx("fuel.transactions") as s:
            await _get_card(s, card_no)
            rows = (await s.execute(
                select(FuelTransactionRow)
                .where(FuelTransactionRow.card_no == card_no,
                       FuelTransactionRow.at >= lo, FuelTransactionRow.at < hi)
                .order_by(FuelTransactionRow.at.desc(), FuelTransactionRow.ref.desc())
                .limit(clamp_limit(limit))
            )).scalars().all()
        return [
            Transaction(at=r.at, station=r.station, amount=r.amount,
                        kind=cast(TransactionKind, r.kind), liters=r.liters)
            for r in rows
        ]

    async def report_loss(self, card_no: str, *, idem_key: str) -> LossReport:
        require_key(idem_key)
        async with self._tx("fuel.report_loss") as s:
            row = await _get_card(s, card_no, lock=True)
            prior = await _prior_event(s, idem_key, card_no, "loss")
            if prior is not None:
                return LossReport(ref=prior.ref, at=prior.at)
            if row.status == "lost":
                raise BackendError("这张卡已经挂失了，不需要重复挂失。")
            if row.status == "cancelled":
                raise BackendError("这张卡已经销户，不能办理挂失。")
            ev = await self._event(s, row, "loss", idem_key, "GS", new_status="lost")
            return LossReport(ref=ev.ref, at=ev.at)

    async def unfreeze(self, card_no: str, *, idem_key: str) -> Unfreeze:
        require_key(idem_key)
        async with self._tx("fuel.unfreeze") as s:
            row = await _get_card(s, card_no, lock=True)
            prior = await _prior_event(s, idem_key, card_no, "unfreeze")
            if prior is not None:
                return Unfreeze(ref=prior.ref, at=prior.at)
            if row.status == "normal":
                raise BackendError("这张卡状态正常，不需要解挂或解冻。")
            if row.status == "cancelled":
                raise BackendError("这张卡已经销户，不能解挂。")
            ev = await self._event(s, row, "unfreeze", idem_key, "JG", new_status="normal")
            return Unfreeze(ref=ev.ref, at=ev.at)

    async def cancel(self, card_no: str, *, idem_key: str) -> Cancellation:
        require_key(idem_key)
        async with self._tx("fuel.cancel") as s:
            row = await _get_card(s, card_no, lock=True)
            prior = await _prior_event(s, idem_key, card_no, "cancel")
            if prior is not None:
                return Cancellation(ref=prior.ref, refund=Decimal(prior.result["refund"]),
                                    at=prior.at)
            _check_cancellable(row)
            if row.is_main:
                open_subs = (await s.execute(
                    select(func.count()).select_from(FuelCardRow)
                    .where(FuelCardRow.main_card_no == row.card_no,
                           FuelCardRow.status != "cancelled")
                )).scalar_one()
                if open_subs:
                    raise BackendError(
                        f"这张主卡下还有{open_subs}张副卡没有销户，请先注销副卡再办理主卡销户。"
                    )
            refund = row.balance
            if row.main_card_no is not None:  # a sub-card's money goes back to its main card
                main = await _get_card(s, row.main_card_no, lock=True)
                main.balance = main.balance + refund
            row.balance = ZERO
            ev = await self._event(s, row, "cancel", idem_key, "XH", new_status="cancelled",
                                   result={"refund": str(refund)})
            return Cancellation(ref=ev.ref, refund=refund, at=ev.at)

    async def loads_pending(self, card_no: str) -> Decimal:
        async with self._tx("fuel.loads_pending") as s:
            return (await _get_card(s, card_no)).pending_load

    async def _event(
        self,
        s: AsyncSession,
        row: FuelCardRow,
        kind: str,
        idem_key: str,
        prefix: str,
        *,
        new_status: str,
        result: dict[str, str] | None = None,
    ) -> CardEventRow:
        ref, now = await self._next_ref(s, REF_SEQ, prefix, 6)
        row.status = new_status
        row.updated_at = now
        ev = CardEventRow(idem_key=idem_key, card_no=row.card_no, kind=kind, ref=ref,
                          result=result or {}, at=now)
        s.add(ev)
        await s.flush()
        return ev


class DemoInvoices(PgAdapter):
    """``InvoiceSystem`` on ``invoices`` (and ``card_events`` for resends)."""

    async def issue(
        self,
        card_no: str,
        *,
        start: date,
        end: date,
        title: str,
        email: str | None,
        idem_key: str,
    ) -> Invoice:
        require_key(idem_key)
        if start > end:
            raise BackendError("开票的开始日期不能晚于结束日期，请重新选择。")
        if not title.strip():
            raise BackendError("请提供发票抬头。")
        if email is not None:
            _check_email(email)
        async with self._tx("invoice.issue") as s:
            await _get_card(s, card_no, lock=True)
            prior = (await s.execute(
                select(InvoiceRow).where(InvoiceRow.idem_key == idem_key)
            )).scalar_one_or_none()
            if prior is not None:
                if prior.card_no != card_no:
                    raise BackendError(IDEM_REUSED_ZH, detail="invoice idem_key reused")
                return _invoice(prior)
            overlap = (await s.execute(
                select(InvoiceRow.ref).where(InvoiceRow.card_no == card_no,
                                             InvoiceRow.period_start <= end,
                                             InvoiceRow.period_end >= start).limit(1)
            )).scalar_one_or_none()
            if overlap is not None:
                raise BackendError("这段时间的加油消费已经开过发票了，如需要可以申请重新发送。")
            lo, hi = day_range(start, end)
            amount = (await s.execute(
                select(func.coalesce(func.sum(FuelTransactionRow.amount), 0))
                .where(FuelTransactionRow.card_no == card_no, FuelTransactionRow.kind == "fuel",
                       FuelTransactionRow.at >= lo, FuelTransactionRow.at < hi)
            )).scalar_one()
            if not amount:
                raise BackendError("这段时间内没有可以开票的加油消费。")
            ref, now = await self._next_ref(s, REF_SEQ, "FP", 6)
            stmt = insert(InvoiceRow).values(
                ref=ref, idem_key=idem_key, card_no=card_no, period_start=start, period_end=end,
                title=title.strip(), email=email, amount=Decimal(amount),
                status="sent" if email else "issued", created_at=now,
            ).on_conflict_do_nothing(index_elements=[InvoiceRow.idem_key]).returning(InvoiceRow)
            made = (await s.execute(stmt)).scalar_one_or_none()
            if made is None:  # a concurrent request with the same key won
                made = (await s.execute(
                    select(InvoiceRow).where(InvoiceRow.idem_key == idem_key)
                )).scalar_one()
            return _invoice(made)

    async def resend(self, ref: str, email: str, idem_key: str) -> Invoice:
        require_key(idem_key)
        _check_email(email)
        async with self._tx("invoice.resend") as s:
            inv = (await s.execute(
                select(InvoiceRow).where(InvoiceRow.ref == ref).with_for_update()
            )).scalar_one_or_none()
            if inv is None:
                raise NotFound("没有查到这张发票，请核对发票编号。")
            if await _prior_event(s, idem_key, inv.card_no, "invoice_resend") is not None:
                return _invoice(inv)
            event_ref, now = await self._next_ref(s, REF_SEQ, "FS", 6)
            inv.email = email
            inv.status = "sent"
            s.add(CardEventRow(idem_key=idem_key, card_no=inv.card_no, kind="invoice_resend",
                               ref=event_ref, result={"invoice": inv.ref}, at=now))
            await s.flush()
            return _invoice(inv)

    async def list_invoices(self, card_no: str) -> list[Invoice]:
        async with self._tx("invoice.list") as s:
            await _get_card(s, card_no)
            rows = (await s.execute(
                select(InvoiceRow).where(InvoiceRow.card_no == card_no)
                .order_by(InvoiceRow.created_at.desc(), InvoiceRow.ref.desc())
            )).scalars().all()
        return [_invoice(r) for r in rows]


def demo_backends(sessions: SessionFactory, *, now: Clock | None = None,
                  lock_policy: LockPolicy | None = None) -> Backends:
    """The four demo adapters on one session factory (``now``: the clock, China time), with
    the verification lockout on the same database (``lock_policy``: default 5 in 24 h)."""
    return Backends(
        fuel=DemoFuelCards(sessions, now=now),
        invoices=DemoInvoices(sessions, now=now),
        gas=DemoGasBilling(sessions, now=now),
        work_orders=DemoWorkOrders(sessions, now=now),
        locks=PgVerificationLocks(sessions, policy=lock_policy, now=now),
    )


# ---- helpers -------------------------------------------------------------------------------
async def _get_card(s: AsyncSession, card_no: str, *, lock: bool = False) -> FuelCardRow:
    stmt = select(FuelCardRow).where(FuelCardRow.card_no == card_no)
    if lock:
        stmt = stmt.with_for_update()
    row = (await s.execute(stmt)).scalar_one_or_none()
    if row is None:
        raise NotFound(CARD_NOT_FOUND_ZH)
    return row


async def _prior_event(
    s: AsyncSession, idem_key: str, card_no: str, kind: str
) -> CardEventRow | None:
    """The event already recorded under ``idem_key``; an error when the key was used for
    another card or operation (a bug in the caller, not something to redo)."""
    ev = (await s.execute(
        select(CardEventRow).where(CardEventRow.idem_key == idem_key)
    )).scalar_one_or_none()
    if ev is not None and (ev.card_no != card_no or ev.kind != kind):
        raise BackendError(IDEM_REUSED_ZH, detail=f"idem_key reused ({ev.kind} -> {kind})")
    return ev


def _check_cancellable(row: FuelCardRow) -> None:
    if row.status == "cancelled":
        raise BackendError("这张卡已经销户了。")
    if row.status == "lost":
        raise BackendError("这张卡已经挂失，不能直接销户。请先解挂，或者带身份证到营业网点办理。")
    if row.status == "frozen":
        raise BackendError("这张卡处于冻结状态，暂时不能销户，请先办理解冻。")
    if row.pending_load > 0:
        raise BackendError(
            f"这张卡还有{row.pending_load}元没有圈存，请先到加油站圈存后再办理销户。"
        )


def _check_email(email: str) -> None:
    local, _, domain = email.strip().partition("@")
    if not local or "." not in domain or " " in email.strip():
        raise BackendError("邮箱地址格式不正确，请核对后重新提供。")


def _card(row: FuelCardRow) -> FuelCard:
    return FuelCard(card_no=row.card_no, holder_masked=mask_name(row.holder_name),
                    status=cast(CardStatus, row.status), balance=row.balance, points=row.points,
                    is_main=row.is_main, main_card_no=row.main_card_no)


def _invoice(row: InvoiceRow) -> Invoice:
    return Invoice(ref=row.ref, amount=row.amount, status=row.status, start=row.period_start,
                   end=row.period_end, title=row.title, at=row.created_at, email=row.email)
