"""Tables of outbound survey campaigns: campaigns, contacts, attempts, answers, do-not-call.

Written by the OPS helper because the campaign tables were needed by the report, the follow-ups,
the call-backs and the operations page before the dialer's own were there. The dialer (issue 7)
may add columns freely (with migration 0005); please keep the names used here or update
campaigns/report.py, callbacks.py and tests/ops_data.py along.

Phones are stored in full, normalised (``+86`` dropped; mobiles 11 digits, landlines with their
area code ``0xx...``): never log them, show them masked (``ivr.core.privacy.mask_number``).
Times are UTC timestamps; calling windows are Asia/Shanghai clock times.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from ivr.core.storage.base import Base

CAMPAIGN_STATUSES = ("draft", "running", "paused", "stopped", "finished")
# pending: waiting for its next attempt (next_at); dialing: an attempt is under way;
# completed: survey finished; refused: declined; dnc: asked not to be called;
# exhausted: attempts or policy used up; skipped: not dialed (DNC at dial time, sampling);
# invalid: the network said the number does not exist or is suspended (never dialled again)
CONTACT_STATUSES = ("pending", "dialing", "completed", "refused", "dnc", "exhausted", "skipped",
                    "invalid")
# vacant, suspended, unreachable: the carriers' announcements (campaigns.carrier)
ATTEMPT_OUTCOMES = ("dialing", "answered", "busy", "no_answer", "failed", "machine", "vacant",
                    "suspended", "unreachable")
DEFAULT_WINDOWS: dict[str, list[list[str]]] = {
    str(d): [["09:00", "12:00"], ["14:00", "20:00"]] for d in range(7)  # 0 = Monday
}
# every minute of every day: drills and tests, which must not wait for a window
ALL_DAY: dict[str, list[list[str]]] = {str(d): [["00:00", "23:59"]] for d in range(7)}
DEFAULT_RETRY_S: dict[str, int] = {"busy": 600, "no_answer": 1800, "failed": 900,
                                   "machine": 3600, "unreachable": 7200}
NEVER_AGAIN = ("vacant", "suspended")  # the number is flagged (NumberFlag) for every campaign
FLAG_DAYS = 90  # Chinese carriers give a closed number to someone else after about 90 days


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(CAMPAIGN_STATUSES)})", name="status"),
        CheckConstraint("business_line IN ('oil', 'gas', 'general')", name="business_line"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    survey: Mapped[str] = mapped_column(String(64))
    business_line: Mapped[str] = mapped_column(String(8), server_default="general")
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    windows: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=lambda: dict(DEFAULT_WINDOWS))
    max_attempts: Mapped[int] = mapped_column(Integer, server_default="3")
    retry_s: Mapped[dict[str, Any]] = mapped_column(JSONB, default=lambda: dict(DEFAULT_RETRY_S))
    daily_cap: Mapped[int] = mapped_column(Integer, server_default="1")  # dials/number/day
    max_channels: Mapped[int] = mapped_column(Integer, server_default="10")
    calls_per_second: Mapped[float] = mapped_column(Float, server_default="1.0")
    sample_rate: Mapped[float] = mapped_column(Float, server_default="1.0")
    machine_action: Mapped[str] = mapped_column(String(16), server_default="hangup")
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now(), onupdate=func.now())

    def __repr__(self) -> str:
        return f"Campaign(id={self.id}, name={self.name!r}, status={self.status!r})"


class Contact(Base):
    __tablename__ = "campaign_contacts"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(CONTACT_STATUSES)})", name="status"),
        Index("uq_campaign_contacts_phone", "campaign_id", "phone", unique=True),
        Index("ix_campaign_contacts_due", "campaign_id", "status", "next_at"),
        Index("uq_campaign_contacts_orig_call", "campaign_id", "orig_call_id", unique=True,
              postgresql_where=text("orig_call_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(64))
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    source: Mapped[str] = mapped_column(String(16), server_default="import")  # import|callback
    orig_call_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    bot: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())

    def __repr__(self) -> str:  # no phone: reprs end up in logs
        return f"Contact(id={self.id}, campaign_id={self.campaign_id}, status={self.status!r})"


class Attempt(Base):
    __tablename__ = "campaign_attempts"
    __table_args__ = (
        CheckConstraint(f"outcome IN ({_in(ATTEMPT_OUTCOMES)})", name="outcome"),
        Index("ix_campaign_attempts_contact", "contact_id", "started_at"),
        Index("ix_campaign_attempts_campaign", "campaign_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaign_contacts.id", ondelete="CASCADE"))
    call_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    channel_id: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16), server_default="dialing")
    amd_status: Mapped[str | None] = mapped_column(String(32))
    cause: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Answer(Base):
    """One answer, written as it is given. ``score``: CSAT 1-5, NPS 0-10, yes/no 1/0;
    ``text``: the ASR transcript of a spoken answer (free comments)."""

    __tablename__ = "campaign_answers"
    __table_args__ = (
        Index("ix_campaign_answers_campaign", "campaign_id", "answered_at"),
        Index("ix_campaign_answers_contact", "contact_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaign_contacts.id", ondelete="CASCADE"))
    call_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    question: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # csat | nps | yes_no | text
    score: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str | None] = mapped_column(Text)
    via: Mapped[str | None] = mapped_column(String(8))  # dtmf | speech
    answered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                  server_default=func.now())


class DoNotCall(Base):
    """A number never to dial: globally (``campaign_id`` NULL) or for one campaign.
    ``source_campaign_id``: the campaign whose call added it (别再打了), for the report."""

    __tablename__ = "do_not_call"
    __table_args__ = (
        Index("uq_do_not_call_phone_campaign", "phone",
              text("coalesce(campaign_id, 0)"), unique=True),
        Index("ix_do_not_call_source", "source_campaign_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    phone: Mapped[str] = mapped_column(String(32))
    campaign_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"))
    source_campaign_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


class NumberFlag(Base):
    """A number the network said does not exist (``vacant``) or is suspended: no campaign
    dials it for ``FLAG_DAYS`` after ``flagged_at`` (a later flag renews it)."""

    __tablename__ = "number_flags"
    __table_args__ = (
        CheckConstraint("reason IN ('vacant', 'suspended')", name="reason"),
        Index("uq_number_flags_phone", "phone", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    phone: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(16))
    campaign_id: Mapped[int | None] = mapped_column(BigInteger)  # the campaign that heard it
    flagged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


# the consent ledger (campaigns.ledger; migration 0012)
LEDGER_EVENTS = ("consent", "refusal", "dnc", "dnc_removed")
LEDGER_CHANNELS = ("survey_call", "operator", "national_list")


class ConsentEvent(Base):
    """One consent or refusal as it happened: the number, what was said or pressed (masked),
    on which channel, by whom (``customer``, an operator's login, ``import``), when. Kept as
    the record an audit asks for; refusals and do-not-call requests survive ``forget``."""

    __tablename__ = "consent_events"
    __table_args__ = (
        CheckConstraint(f"event IN ({_in(LEDGER_EVENTS)})", name="event"),
        CheckConstraint(f"channel IN ({_in(LEDGER_CHANNELS)})", name="channel"),
        Index("ix_consent_events_phone", "phone", "at"),
        Index("ix_consent_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    phone: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    words: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[int | None] = mapped_column(BigInteger)
    call_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
