"""Demo gas billing and work orders on PostgreSQL (see ``demo`` for fuel cards and invoices).

Work orders are numbered ``GD`` + China date + 4 digits of ``work_order_no_seq``. ``create`` is
idempotent on ``idem_key`` (UNIQUE): ``INSERT ... ON CONFLICT DO NOTHING``, then the row with
that key is returned, so a repeated request never makes a second order.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from dialog.backends._pg import PgAdapter, clamp_limit, matches, require_key
from dialog.backends.base import (
    PRIORITIES,
    GasAccount,
    Line,
    Meter,
    MeterKind,
    NotFound,
    Priority,
    Recharge,
    WorkOrder,
)
from dialog.backends.hashing import mask_address, mask_name
from dialog.backends.tables import (
    WORK_ORDER_SEQ,
    GasAccountRow,
    GasMeterRow,
    GasRechargeRow,
    WorkOrderRow,
)
from ivr.core.lines import LINES

ACCOUNT_NOT_FOUND_ZH = "没有查到这个燃气户号，请核对后重新输入。"

# promised response time in hours: emergencies (leaks) get a crew at once
ETA_HOURS = {"emergency": 1, "urgent": 4}
ETA_NORMAL = {"gas": 24, "oil": 48, "general": 48}


class DemoGasBilling(PgAdapter):
    """``GasBilling`` on ``gas_accounts``, ``gas_recharges`` and ``gas_meters``."""

    async def verify(
        self, account_no: str, *, id_tail: str | None = None, phone_tail: str | None = None
    ) -> bool:
        """True when at least one of ``id_tail``/``phone_tail`` is given and all given match."""
        if not id_tail and not phone_tail:
            return False
        async with self._tx("gas.verify") as s:
            row = (await s.execute(
                select(GasAccountRow.id_tail_hash, GasAccountRow.phone_tail_hash)
                .where(GasAccountRow.account_no == account_no)
            )).one_or_none()
        if row is None:
            return False
        if id_tail and not await matches(id_tail, row.id_tail_hash):
            return False
        return not (phone_tail and not await matches(phone_tail, row.phone_tail_hash))

    async def account(self, account_no: str) -> GasAccount:
        async with self._tx("gas.account") as s:
            row = await s.get(GasAccountRow, account_no)
        if row is None:
            raise NotFound(ACCOUNT_NOT_FOUND_ZH)
        return GasAccount(
            account_no=row.account_no, holder_masked=mask_name(row.holder_name),
            address_masked=mask_address(row.address), balance=row.balance,
            arrears=row.arrears, status=row.status,
        )

    async def recharges(self, account_no: str, limit: int = 5) -> list[Recharge]:
        async with self._tx("gas.recharges") as s:
            if await s.get(GasAccountRow, account_no) is None:
                raise NotFound(ACCOUNT_NOT_FOUND_ZH)
            rows = (await s.execute(
                select(GasRechargeRow).where(GasRechargeRow.account_no == account_no)
                .order_by(GasRechargeRow.at.desc(), GasRechargeRow.ref.desc())
                .limit(clamp_limit(limit))
            )).scalars().all()
        return [
            Recharge(ref=r.ref, at=r.at, amount=r.amount, channel=r.channel,
                     credited=r.credited, written_to_card=r.written_to_card)
            for r in rows
        ]

    async def meter(self, account_no: str) -> Meter:
        async with self._tx("gas.meter") as s:
            row = (await s.execute(
                select(GasMeterRow).where(GasMeterRow.account_no == account_no)
            )).scalar_one_or_none()
            if row is None and await s.get(GasAccountRow, account_no) is None:
                raise NotFound(ACCOUNT_NOT_FOUND_ZH)
        if row is None:
            raise NotFound("这个户号下没有登记燃气表，请转人工服务核实。")
        return Meter(meter_no=row.meter_no, kind=cast(MeterKind, row.kind), status=row.status,
                     last_reading=row.last_reading, last_read_at=row.last_read_at)


class DemoWorkOrders(PgAdapter):
    """``WorkOrders`` on ``work_orders``."""

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
    ) -> WorkOrder:
        require_key(idem_key)
        if line not in LINES:
            raise ValueError(f"work order line must be one of {LINES}, not {line!r}")
        if priority not in PRIORITIES:
            raise ValueError(f"work order priority must be one of {PRIORITIES}, not {priority!r}")
        if not kind or not subject:
            raise ValueError("work order kind and subject must not be empty")
        async with self._tx("workorder.create") as s:
            prior = (await s.execute(
                select(WorkOrderRow).where(WorkOrderRow.idem_key == idem_key)
            )).scalar_one_or_none()
            if prior is not None:
                return _order(prior)
            number, now = await self._next_ref(s, WORK_ORDER_SEQ, "GD", 4)
            stmt = insert(WorkOrderRow).values(
                number=number, idem_key=idem_key, kind=kind, line=line, subject=subject[:200],
                detail=detail, account_no=account, card_no=card, phone=phone,
                priority=priority, status="dispatched" if priority == "emergency" else "open",
                eta_hours=ETA_HOURS.get(priority, ETA_NORMAL[line]), created_at=now,
            ).on_conflict_do_nothing(index_elements=[WorkOrderRow.idem_key]).returning(
                WorkOrderRow
            )
            made = (await s.execute(stmt)).scalar_one_or_none()
            if made is None:  # a concurrent request with the same key won
                made = (await s.execute(
                    select(WorkOrderRow).where(WorkOrderRow.idem_key == idem_key)
                )).scalar_one()
            return _order(made)

    async def get(self, number: str) -> WorkOrder:
        async with self._tx("workorder.get") as s:
            row = (await s.execute(
                select(WorkOrderRow).where(WorkOrderRow.number == number.strip().upper())
            )).scalar_one_or_none()
        if row is None:
            raise NotFound("没有查到这个工单号，请核对后重新输入。")
        return _order(row)


def _order(row: WorkOrderRow) -> WorkOrder:
    return WorkOrder(number=row.number, status=row.status, eta_hours=row.eta_hours,
                     kind=row.kind, line=row.line, priority=row.priority,
                     created_at=row.created_at)
