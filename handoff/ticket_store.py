"""Submitted tickets and callback tasks in PostgreSQL (tables in ``handoff.ticket_tables``).

``TicketStore.submit`` is idempotent per handoff: the first submission creates the ticket (a
new ticket number), a resubmission updates its fields and keeps its number and its work order.
The work order in the back end (``WorkOrders.create``, idempotent on ``ticket:<handoff id>``)
is created once, when the agent asks for one; a back end that is down leaves the ticket stored
without a work order (``work_order_error``), and a later resubmission tries again.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError

from dialog.backends.base import BackendError, WorkOrders
from handoff.ticket_tables import CallbackTaskRow, TicketRow
from handoff.tickets import TicketForm
from ivr.core.storage.db import SessionFactory
from ivr.core.storage.errors import StorageError
from ivr.core.storage.models import Call

log = logging.getLogger("handoff.ticket_store")


def new_ticket_no(now: datetime | None = None) -> str:
    """``TK`` + UTC date + 6 random hex digits (unique index; a clash fails loudly)."""
    day = (now or datetime.now(UTC)).strftime("%Y%m%d")
    return f"TK{day}{secrets.token_hex(3).upper()}"


def ticket_dict(row: TicketRow) -> dict[str, Any]:
    return {
        "ticket_no": row.ticket_no, "handoff_id": row.handoff_id,
        "call_id": row.call_id.hex if row.call_id else None, "agent": row.agent,
        "line": row.line, "type": row.type, "account_tail": row.account_tail,
        "problem": row.problem, "requested_action": row.requested_action,
        "contact": row.contact, "priority": row.priority, "work_order_no": row.work_order_no,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
    }


@dataclass
class Submitted:
    ticket: dict[str, Any]
    created: bool  # False: a resubmission updated the existing ticket
    work_order_error: str | None = None


class TicketStore:
    def __init__(self, sessions: SessionFactory, work_orders: WorkOrders | None = None) -> None:
        self.sessions = sessions
        self.work_orders = work_orders

    async def caller_of(self, call_id: str) -> str | None:
        """The caller's full number from the call record (the pop only shows it masked)."""
        try:
            key = uuid.UUID(call_id)
        except ValueError:
            return None
        try:
            async with self.sessions() as s:
                number = await s.scalar(select(Call.caller_number).where(Call.id == key))
        except SQLAlchemyError as exc:
            raise StorageError(f"reading the call failed: {type(exc).__name__}") from exc
        return number or None

    async def get(self, handoff_id: str) -> dict[str, Any] | None:
        try:
            async with self.sessions() as s:
                row = (await s.execute(select(TicketRow).where(
                    TicketRow.handoff_id == handoff_id))).scalar_one_or_none()
        except SQLAlchemyError as exc:
            raise StorageError(f"reading ticket failed: {type(exc).__name__}") from exc
        return ticket_dict(row) if row is not None else None

    async def submit(self, *, handoff_id: str, call_id: str | None, agent: str,
                     form: TicketForm, work_order: bool, meta: dict[str, Any]) -> Submitted:
        values = form.model_dump()
        cid = uuid.UUID(call_id) if call_id else None
        try:
            async with self.sessions() as s, s.begin():
                existed = (await s.execute(select(TicketRow.id).where(
                    TicketRow.handoff_id == handoff_id))).scalar_one_or_none() is not None
                stmt = insert(TicketRow).values(
                    ticket_no=new_ticket_no(), handoff_id=handoff_id, call_id=cid, agent=agent,
                    meta=meta, **values)
                upsert = stmt.on_conflict_do_update(
                    index_elements=[TicketRow.handoff_id],
                    set_={**values, "agent": agent, "meta": meta, "updated_at": func.now()},
                ).returning(TicketRow)
                row = (await s.execute(upsert)).scalar_one()
                ticket = ticket_dict(row)
        except SQLAlchemyError as exc:
            raise StorageError(f"storing ticket failed: {type(exc).__name__}") from exc
        error = None
        if work_order and ticket["work_order_no"] is None and self.work_orders is not None:
            error = await self._work_order(ticket, form)
        return Submitted(ticket, not existed, error)

    async def _work_order(self, ticket: dict[str, Any], form: TicketForm) -> str | None:
        assert self.work_orders is not None
        try:
            order = await self.work_orders.create(
                kind=form.type, line=form.line, subject=form.problem[:200],
                detail={"ticket_no": ticket["ticket_no"], "requested_action":
                        form.requested_action, "account_tail": form.account_tail},
                phone=form.contact or None, priority=form.priority,
                idem_key=f"ticket:{ticket['handoff_id']}")
        except (BackendError, ValueError) as exc:
            log.warning("work order for ticket %s not created: %s", ticket["ticket_no"],
                        type(exc).__name__)
            return str(exc)[:200]
        try:
            async with self.sessions() as s, s.begin():
                await s.execute(update(TicketRow).where(
                    TicketRow.handoff_id == ticket["handoff_id"]).values(
                    work_order_no=order.number))
        except SQLAlchemyError as exc:
            raise StorageError(f"linking work order failed: {type(exc).__name__}") from exc
        ticket["work_order_no"] = order.number
        return None

    # ---- callback tasks ---------------------------------------------------------------------
    async def add_callback(self, *, call_id: uuid.UUID, handoff_id: str | None, caller: str,
                           line: str, queue: str, reason: str) -> int:
        """Store a callback task (one per call: a second request returns the first's id)."""
        try:
            async with self.sessions() as s, s.begin():
                stmt = insert(CallbackTaskRow).values(
                    call_id=call_id, handoff_id=handoff_id, caller_number=caller[:32],
                    line=line, queue=queue, reason=reason,
                ).on_conflict_do_nothing(index_elements=[CallbackTaskRow.call_id]).returning(
                    CallbackTaskRow.id)
                made = (await s.execute(stmt)).scalar_one_or_none()
                if made is None:
                    made = (await s.execute(select(CallbackTaskRow.id).where(
                        CallbackTaskRow.call_id == call_id))).scalar_one()
                return int(made)
        except SQLAlchemyError as exc:
            raise StorageError(f"storing callback task failed: {type(exc).__name__}") from exc
