"""Tables of the demo business back end (migration ``0002_business``).

Card and account numbers are stored in full (the demo systems are the systems of record); PINs,
ID tails and phone tails only as salted hashes (``dialog.backends.hashing``). Every write that a
caller can repeat has a unique ``idem_key``: ``card_events`` (loss, unfreeze, cancel, invoice
resend), ``invoices`` and ``work_orders``.

``verification_locks`` (migration ``0007``) is the IVR's own record, not a business table: failed
verifications per card or account, keyed by a hash of the number (``dialog.backends.locks``).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    Sequence,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ivr.core.storage.base import Base

# numbers of refs and work orders: yyyymmdd + the sequence's last digits
REF_SEQ = Sequence("business_ref_seq", metadata=Base.metadata)
WORK_ORDER_SEQ = Sequence("work_order_no_seq", metadata=Base.metadata)

Money = Numeric(12, 2)


class FuelCardRow(Base):
    __tablename__ = "fuel_cards"
    __table_args__ = (
        CheckConstraint("status IN ('normal', 'lost', 'frozen', 'cancelled')", name="status"),
    )

    card_no: Mapped[str] = mapped_column(String(19), primary_key=True)
    holder_name: Mapped[str] = mapped_column(String(32))
    pin_hash: Mapped[str] = mapped_column(String(160))
    id_tail_hash: Mapped[str] = mapped_column(String(160))
    status: Mapped[str] = mapped_column(String(16), server_default="normal")
    balance: Mapped[Decimal] = mapped_column(Money, server_default="0")
    points: Mapped[int] = mapped_column(Integer, server_default="0")
    pending_load: Mapped[Decimal] = mapped_column(Money, server_default="0")
    is_main: Mapped[bool] = mapped_column(Boolean, server_default="true")
    main_card_no: Mapped[str | None] = mapped_column(
        String(19), ForeignKey("fuel_cards.card_no"), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    def __repr__(self) -> str:  # no card number, no hashes
        return f"FuelCardRow(status={self.status!r}, is_main={self.is_main})"


class FuelTransactionRow(Base):
    __tablename__ = "fuel_transactions"
    __table_args__ = (
        CheckConstraint("kind IN ('fuel', 'load', 'recharge')", name="kind"),
        Index("ix_fuel_transactions_card_at", "card_no", "at"),
    )

    ref: Mapped[str] = mapped_column(String(32), primary_key=True)
    card_no: Mapped[str] = mapped_column(String(19), ForeignKey("fuel_cards.card_no"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    station: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Money)
    kind: Mapped[str] = mapped_column(String(16))
    liters: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))


class CardEventRow(Base):
    """One change asked of a card (loss, unfreeze, cancel, invoice_resend), once per key."""

    __tablename__ = "card_events"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('loss', 'unfreeze', 'cancel', 'invoice_resend')", name="kind"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    idem_key: Mapped[str] = mapped_column(String(128), unique=True)
    card_no: Mapped[str] = mapped_column(String(19), ForeignKey("fuel_cards.card_no"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class InvoiceRow(Base):
    __tablename__ = "invoices"
    __table_args__ = (CheckConstraint("status IN ('issued', 'sent')", name="status"),)

    ref: Mapped[str] = mapped_column(String(32), primary_key=True)
    idem_key: Mapped[str] = mapped_column(String(128), unique=True)
    card_no: Mapped[str] = mapped_column(String(19), ForeignKey("fuel_cards.card_no"), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    title: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(128))
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), server_default="issued")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class GasAccountRow(Base):
    __tablename__ = "gas_accounts"
    __table_args__ = (
        CheckConstraint(
            "status IN ('normal', 'arrears', 'suspended', 'closed')", name="status"
        ),
    )

    account_no: Mapped[str] = mapped_column(String(10), primary_key=True)
    holder_name: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(128))
    id_tail_hash: Mapped[str] = mapped_column(String(160))
    phone_tail_hash: Mapped[str] = mapped_column(String(160))
    balance: Mapped[Decimal] = mapped_column(Money, server_default="0")
    arrears: Mapped[Decimal] = mapped_column(Money, server_default="0")
    status: Mapped[str] = mapped_column(String(16), server_default="normal")

    def __repr__(self) -> str:
        return f"GasAccountRow(status={self.status!r})"


class GasRechargeRow(Base):
    __tablename__ = "gas_recharges"
    __table_args__ = (
        CheckConstraint(
            "channel IN ('wechat', 'alipay', 'bank', 'counter', 'app')", name="channel"
        ),
        Index("ix_gas_recharges_account_at", "account_no", "at"),
    )

    ref: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_no: Mapped[str] = mapped_column(String(10), ForeignKey("gas_accounts.account_no"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    amount: Mapped[Decimal] = mapped_column(Money)
    channel: Mapped[str] = mapped_column(String(16))
    credited: Mapped[bool] = mapped_column(Boolean, server_default="true")
    written_to_card: Mapped[bool] = mapped_column(Boolean, server_default="false")


class GasMeterRow(Base):
    __tablename__ = "gas_meters"
    __table_args__ = (
        CheckConstraint("kind IN ('ic_card', 'smart', 'mechanical')", name="kind"),
        CheckConstraint(
            "status IN ('normal', 'faulty', 'valve_closed', 'low_battery')", name="status"
        ),
    )

    meter_no: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_no: Mapped[str] = mapped_column(
        String(10), ForeignKey("gas_accounts.account_no"), unique=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default="normal")
    last_reading: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    last_read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WorkOrderRow(Base):
    """A ticket for the back office. ``phone`` is the call-back number, stored in full like
    ``calls.caller_number``: never log it."""

    __tablename__ = "work_orders"
    __table_args__ = (
        CheckConstraint("line IN ('oil', 'gas', 'general')", name="line"),
        CheckConstraint("priority IN ('normal', 'urgent', 'emergency')", name="priority"),
        CheckConstraint("status IN ('open', 'dispatched', 'closed')", name="status"),
        Index("ix_work_orders_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    idem_key: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    line: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    account_no: Mapped[str | None] = mapped_column(String(32))
    card_no: Mapped[str | None] = mapped_column(String(19))
    phone: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16), server_default="normal")
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    eta_hours: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    def __repr__(self) -> str:
        return f"WorkOrderRow(number={self.number!r}, kind={self.kind!r}, status={self.status!r})"


class VerificationLockRow(Base):
    """Failed verifications of one card or gas account across calls (``dialog.backends.locks``
    decides the policy). ``key_hash`` is a SHA-256 of the normalised number, never the number."""

    __tablename__ = "verification_locks"
    __table_args__ = (
        CheckConstraint("kind IN ('fuel_card', 'gas_account')", name="kind"),
    )

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, server_default="0")
    first_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    def __repr__(self) -> str:  # no hash either
        return f"VerificationLockRow(kind={self.kind!r}, failures={self.failures})"
