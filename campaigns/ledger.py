"""The consent ledger: every consent and refusal, and every do-not-call change, as an audit
asks for them (issue 23).

Decides what is recorded and how:

- **A survey call**: the customer's answer to the consent question (consent or refusal) and a
  do-not-call request (不要再打了), with the words the recogniser heard or the key pressed
  (digits masked, ``ivr.core.privacy``), channel ``survey_call``, actor ``customer``, the
  campaign and the call;
- **An operator**: ``ivr campaigns dnc add|remove`` (channel ``operator``, actor the login);
- **The national list** (谢绝来电-style, a CSV of numbers): ``import_national`` puts each new
  number on the global do-not-call list (reason ``national_list``) and records it once
  (channel ``national_list``, actor who imported it); numbers already listed are counted, not
  recorded again; bad lines are reported by line and the rest imported. Pending contacts of
  every campaign with those numbers become ``dnc`` at once.

``events`` reads the ledger for a period and optionally one number; ``csv_rows`` is the audit
export (phones masked unless the caller is allowed them, as the answers export).
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from campaigns.phones import PhoneError, masked, normalise
from campaigns.tables import ConsentEvent, Contact, DoNotCall
from ivr.core.privacy import mask_digits_in_text
from ivr.core.storage.db import SessionFactory

SLICE = 5000  # numbers per statement (PostgreSQL's bind parameters stay far below 32,767)
MAX_WORDS = 500


async def record(sessions: SessionFactory, phone: str, event: str, channel: str, *,
                 actor: str, words: str | None = None, campaign_id: int | None = None,
                 call_id: uuid.UUID | None = None) -> None:
    """One ledger row (``phone`` normalised; ``words`` masked and cut to 500 characters)."""
    async with sessions() as s, s.begin():
        s.add(ConsentEvent(
            phone=normalise(phone), event=event, channel=channel, actor=actor[:64],
            words=mask_digits_in_text(words)[:MAX_WORDS] if words else None,
            campaign_id=campaign_id, call_id=call_id))


@dataclass
class NationalImport:
    added: int = 0
    already: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def _numbers(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(line, normalised number) of each row's first cell (a ``phone`` header is skipped),
    and (line, why) of the rows that are not numbers."""
    good: list[tuple[int, str]] = []
    bad: list[tuple[int, str]] = []
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        return [], [(0, f"not a CSV file: {exc}")]
    for n, row in enumerate(rows, 1):
        cell = (row[0] if row else "").strip().lstrip("\ufeff")
        if not cell or (n == 1 and not any(ch.isdigit() for ch in cell)):
            continue  # blank, or a header
        try:
            good.append((n, normalise(cell)))
        except PhoneError as exc:
            bad.append((n, str(exc)))
    return good, bad


async def import_national(sessions: SessionFactory, text: str, *, actor: str
                          ) -> NationalImport:
    """Put the CSV's numbers on the global do-not-call list (see the module)."""
    good, bad = _numbers(text)
    report = NationalImport(problems=bad)
    numbers = list(dict.fromkeys(number for _, number in good))
    report.already += len(good) - len(numbers)  # repeated within the file
    async with sessions() as s, s.begin():
        for i in range(0, len(numbers), SLICE):
            part = numbers[i:i + SLICE]
            added = list((await s.execute(
                insert(DoNotCall).values([{"phone": p, "campaign_id": None,
                                           "reason": "national_list"} for p in part])
                .on_conflict_do_nothing().returning(DoNotCall.phone))).scalars())
            report.added += len(added)
            report.already += len(part) - len(added)
            if added:
                s.add_all([ConsentEvent(phone=p, event="dnc", channel="national_list",
                                        actor=actor[:64]) for p in added])
                await s.execute(update(Contact).where(
                    Contact.phone.in_(added), Contact.status == "pending").values(status="dnc"))
    return report


async def events(sessions: SessionFactory, *, since: datetime | None = None,
                 until: datetime | None = None, phone: str | None = None
                 ) -> list[ConsentEvent]:
    """The ledger, oldest first: in ``[since, until)``, of one number when given."""
    stmt = select(ConsentEvent).order_by(ConsentEvent.at, ConsentEvent.id)
    if since is not None:
        stmt = stmt.where(ConsentEvent.at >= since)
    if until is not None:
        stmt = stmt.where(ConsentEvent.at < until)
    if phone is not None:
        stmt = stmt.where(ConsentEvent.phone == normalise(phone))
    async with sessions() as s:
        return list((await s.execute(stmt)).scalars())


HEADER = ["时间", "号码", "事件", "渠道", "内容", "操作人", "活动", "通话"]
EVENT_ZH = {"consent": "同意", "refusal": "拒绝", "dnc": "登记免打扰", "dnc_removed": "撤销免打扰"}
CHANNEL_ZH = {"survey_call": "回访电话", "operator": "运营人员", "national_list": "全国拒接名单"}


def csv_rows(rows: list[ConsentEvent], *, unmasked: bool = False) -> list[list[str]]:
    """The audit export: a header, then one row per event (China time)."""
    from ivr.core.chinatime import CHINA

    out = [HEADER]
    for e in rows:
        out.append([e.at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                    e.phone if unmasked else masked(e.phone), EVENT_ZH[e.event],
                    CHANNEL_ZH[e.channel], e.words or "", e.actor,
                    str(e.campaign_id or ""), str(e.call_id or "")])
    return out
