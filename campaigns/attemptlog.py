"""Every dial of a campaign as one CSV row: what each attempt met, for the audit and the carrier.

The answers export (``campaigns.report.write_csv``) has one row per answer, so numbers nobody
answered never appear in it. This one has one row per dial attempt: when it started, was
answered and ended, its outcome (``answered``, ``busy``, ``no_answer``, ``machine``, ``failed``
and the network's ``vacant``, ``suspended``, ``unreachable``: ``campaigns.carrier``), what AMD
said, why it ended (``early media: …`` / ``after answer: …`` for an announcement, with the words
heard) and the contact's state now. Phones are masked unless ``unmasked``; cells a spreadsheet
would run as formulas are escaped (``ivr.core.csvsafe``). Times are China time.

Read by ``ivr campaigns report ID --attempts-csv FILE`` and ``GET
/api/ops/campaigns/{cid}/attempts.csv``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from campaigns.tables import Attempt, Contact
from ivr.core.chinatime import CHINA
from ivr.core.csvsafe import safe_writer
from ivr.core.privacy import mask_number
from ivr.core.storage.db import SessionFactory
from ivr.core.storage.errors import StorageError

COLUMNS = ("campaign_id", "contact_id", "attempt_id", "phone", "started_at", "answered_at",
           "ended_at", "seconds", "outcome", "amd_status", "cause", "contact_status")


@dataclass(frozen=True, slots=True)
class AttemptRow:
    campaign_id: int
    contact_id: int
    attempt_id: int
    phone: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    outcome: str
    amd_status: str | None
    cause: str | None
    contact_status: str


async def load_attempts(sessions: SessionFactory, campaign_id: int) -> list[AttemptRow]:
    """The campaign's dial attempts, oldest first."""
    stmt = (select(Attempt, Contact.phone, Contact.status)
            .join(Contact, Contact.id == Attempt.contact_id)
            .where(Attempt.campaign_id == campaign_id)
            .order_by(Attempt.started_at, Attempt.id))
    try:
        async with sessions() as s:
            rows = (await s.execute(stmt)).all()
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        raise StorageError(f"campaigns.attempts({campaign_id}) failed: "
                           f"{type(exc).__name__}: {exc}") from exc
    return [AttemptRow(a.campaign_id, a.contact_id, a.id, phone, a.started_at, a.answered_at,
                       a.ended_at, a.outcome, a.amd_status, a.cause, status)
            for a, phone, status in rows]


def _when(t: datetime | None) -> str:
    return t.astimezone(CHINA).isoformat(timespec="seconds") if t is not None else ""


def write_attempts_csv(rows: list[AttemptRow], out: io.TextIOBase | Any, *,
                       unmasked: bool) -> int:
    """One CSV row per attempt; returns the row count."""
    w = safe_writer(out)
    w.writerow(COLUMNS)
    for r in rows:
        seconds = (f"{(r.ended_at - r.started_at).total_seconds():.1f}"
                   if r.ended_at is not None else "")
        w.writerow([r.campaign_id, r.contact_id, r.attempt_id,
                    r.phone if unmasked else mask_number(r.phone), _when(r.started_at),
                    _when(r.answered_at), _when(r.ended_at), seconds, r.outcome,
                    r.amd_status or "", r.cause or "", r.contact_status])
    return len(rows)


async def attempts_csv_text(sessions: SessionFactory, campaign_id: int, *,
                            unmasked: bool) -> str:
    buf = io.StringIO()
    write_attempts_csv(await load_attempts(sessions, campaign_id), buf, unmasked=unmasked)
    return buf.getvalue()
