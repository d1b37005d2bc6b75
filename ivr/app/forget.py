"""Forgetting one customer (PIPL right to deletion): ``ivr privacy forget PHONE``.

Decides what "the customer's personal data" is, found by phone number in every form it is
stored (``campaigns.phones.normalise``: ``+86``/``0086``/``86`` prefixes, separators, a trunk
``0``; columns are compared by their digits only):

- ``calls`` from (``caller_number``) or to (``dialed_number``, outbound surveys) that number
  are kept for call statistics but emptied: the number is set NULL and the journal ``path``
  keeps only each step's name and time (prompt texts with balances, keys, transcripts go).
- ``tickets`` with that contact or from those calls are deleted; ``work_orders`` with that
  call-back phone or linked to a deleted ticket are deleted; ``callback_tasks`` for that
  number or those calls are deleted.
- Survey ``campaign_contacts`` with that phone (or created for one of those calls) are deleted
  with their attempts and ``campaign_answers`` (foreign keys cascade); the answers are counted.
- ``do_not_call`` rows are **kept**: the wish not to be called is itself the legal basis for
  keeping the number (deleting it would let the dialer call the customer again); they are
  counted and reported as kept. So are the consent ledger's refusals and do-not-call events
  (``consent_events``), for the same reason; its consents are deleted.
- ``number_flags`` (the network said the number was vacant or suspended) are deleted.

Everything runs in one transaction: either all of it is forgotten or nothing. A second run finds
nothing and reports zeros. Not covered here: Redis screen pops (expire after
``handoff.pop_ttl_s``) and logs (numbers are masked by ``RedactingFilter`` before writing).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, update

from campaigns.phones import normalise
from campaigns.tables import Answer, ConsentEvent, Contact, DoNotCall, NumberFlag
from dialog.backends.tables import WorkOrderRow
from handoff.ticket_tables import CallbackTaskRow, TicketRow
from ivr.core.privacy import mask_number
from ivr.core.storage.db import SessionFactory
from ivr.core.storage.models import Call


@dataclass
class ForgetReport:
    """Rows removed per table (``calls``: rows emptied); ``do_not_call``: rows kept."""

    masked_phone: str
    counts: dict[str, int] = field(default_factory=dict)
    kept_dnc: int = 0
    kept_refusals: int = 0  # consent ledger: refusals and do-not-call events

    def lines(self) -> list[str]:
        out = [f"{self.masked_phone}:"]
        for label, n in self.counts.items():
            what = "emptied (number and journal text removed)" if label == "calls" else "deleted"
            out.append(f"  {label}: {n} {what}")
        out.append(f"  do_not_call: {self.kept_dnc} kept (免打扰登记须保留，作为不再拨打的依据)")
        out.append(f"  consent_events: {self.kept_refusals} refusals and do-not-call events "
                   f"kept (同上)")
        return out


def phone_forms(raw: str) -> tuple[str, set[str]]:
    """The stored form of ``raw`` (raises ``PhoneError``) and the digit strings it may be
    stored as elsewhere: ``13800138000``, ``8613800138000``, ``008613800138000``,
    ``013800138000``; landlines ``01062221234``, ``861062221234``, ``00861062221234``."""
    stored = normalise(raw)
    national = stored[1:] if stored.startswith("0") else stored
    forms = {stored, "86" + national, "0086" + national}
    if not stored.startswith("0"):
        forms.add("0" + stored)  # a mobile as some trunks present it, with a trunk 0
    return stored, forms


def _matches(column: Any, forms: set[str]) -> ColumnElement[bool]:
    digits: ColumnElement[Any] = func.regexp_replace(column, "[^0-9]", "", "g")
    return digits.in_(sorted(forms))


def _strip_path(path: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [{k: step[k] for k in ("t", "step") if k in step}
            for step in (path or []) if isinstance(step, dict)]


async def forget(sessions: SessionFactory, raw_phone: str) -> ForgetReport:
    """Remove the personal data of the customer with phone ``raw_phone`` (see the module
    docstring). Raises ``campaigns.phones.PhoneError`` for a value that is not a number."""
    stored, forms = phone_forms(raw_phone)
    report = ForgetReport(mask_number(stored))
    c = report.counts
    async with sessions() as session, session.begin():
        rows = (await session.execute(
            select(Call.id, Call.caller_number, Call.dialed_number, Call.path).where(or_(
                _matches(Call.caller_number, forms), _matches(Call.dialed_number, forms)))
            .with_for_update())).all()
        call_ids: list[uuid.UUID] = [r.id for r in rows]
        c["calls"] = len(rows)  # emptied below, once the rows linked to them are found

        tickets = (await session.execute(
            select(TicketRow.id, TicketRow.work_order_no).where(or_(
                _matches(TicketRow.contact, forms), TicketRow.call_id.in_(call_ids))))).all()
        orders = {t.work_order_no for t in tickets if t.work_order_no}
        c["tickets"] = await _delete(session, TicketRow, TicketRow.id.in_([t.id for t in tickets]))
        c["work_orders"] = await _delete(session, WorkOrderRow, or_(
            _matches(WorkOrderRow.phone, forms), WorkOrderRow.number.in_(sorted(orders))))
        c["callback_tasks"] = await _delete(session, CallbackTaskRow, or_(
            _matches(CallbackTaskRow.caller_number, forms),
            CallbackTaskRow.call_id.in_(call_ids)))

        contact_ids = list((await session.scalars(select(Contact.id).where(or_(
            Contact.phone == stored, Contact.orig_call_id.in_(call_ids))))).all())
        c["campaign_answers"] = int(await session.scalar(
            select(func.count()).select_from(Answer)
            .where(Answer.contact_id.in_(contact_ids))) or 0)
        c["campaign_contacts"] = await _delete(session, Contact, Contact.id.in_(contact_ids))

        for r in rows:
            blank_caller = r.caller_number is not None and _digits(r.caller_number) in forms
            blank_dialed = r.dialed_number is not None and _digits(r.dialed_number) in forms
            await session.execute(update(Call).where(Call.id == r.id).values(
                caller_number=None if blank_caller else r.caller_number,
                dialed_number=None if blank_dialed else r.dialed_number,
                path=_strip_path(r.path)))

        c["number_flags"] = await _delete(session, NumberFlag, NumberFlag.phone == stored)
        c["consent_events"] = await _delete(session, ConsentEvent, (
            ConsentEvent.phone == stored) & (ConsentEvent.event == "consent"))
        report.kept_refusals = int(await session.scalar(
            select(func.count()).select_from(ConsentEvent)
            .where(ConsentEvent.phone == stored)) or 0)
        report.kept_dnc = int(await session.scalar(
            select(func.count()).select_from(DoNotCall).where(DoNotCall.phone == stored)) or 0)
    return report


def _digits(value: str) -> str:
    return "".join(ch for ch in value if "0" <= ch <= "9")


async def _delete(session: Any, table: Any, condition: ColumnElement[bool]) -> int:
    result = await session.execute(delete(table).where(condition))
    return int(getattr(result, "rowcount", 0) or 0)
