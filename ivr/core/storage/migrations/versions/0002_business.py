"""business back end (demo): fuel cards, transactions, card events, invoices, gas accounts,
recharges and meters, work orders

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(precision=12, scale=2)


def _now() -> sa.TextClause:
    return sa.text("now()")


def _jsonb_empty() -> sa.TextClause:
    return sa.text("'{}'::jsonb")


def upgrade() -> None:
    op.execute("CREATE SEQUENCE IF NOT EXISTS business_ref_seq")
    op.execute("CREATE SEQUENCE IF NOT EXISTS work_order_no_seq")
    op.create_table(
        "fuel_cards",
        sa.Column("card_no", sa.String(19), nullable=False),
        sa.Column("holder_name", sa.String(32), nullable=False),
        sa.Column("pin_hash", sa.String(160), nullable=False),
        sa.Column("id_tail_hash", sa.String(160), nullable=False),
        sa.Column("status", sa.String(16), server_default="normal", nullable=False),
        sa.Column("balance", MONEY, server_default="0", nullable=False),
        sa.Column("points", sa.Integer(), server_default="0", nullable=False),
        sa.Column("pending_load", MONEY, server_default="0", nullable=False),
        sa.Column("is_main", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("main_card_no", sa.String(19), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(),
                  nullable=False),
        sa.CheckConstraint("status IN ('normal', 'lost', 'frozen', 'cancelled')",
                           name=op.f("ck_fuel_cards_status")),
        sa.ForeignKeyConstraint(["main_card_no"], ["fuel_cards.card_no"],
                                name=op.f("fk_fuel_cards_main_card_no_fuel_cards")),
        sa.PrimaryKeyConstraint("card_no", name=op.f("pk_fuel_cards")),
    )
    op.create_index(op.f("ix_fuel_cards_main_card_no"), "fuel_cards", ["main_card_no"])
    op.create_table(
        "gas_accounts",
        sa.Column("account_no", sa.String(10), nullable=False),
        sa.Column("holder_name", sa.String(32), nullable=False),
        sa.Column("address", sa.String(128), nullable=False),
        sa.Column("id_tail_hash", sa.String(160), nullable=False),
        sa.Column("phone_tail_hash", sa.String(160), nullable=False),
        sa.Column("balance", MONEY, server_default="0", nullable=False),
        sa.Column("arrears", MONEY, server_default="0", nullable=False),
        sa.Column("status", sa.String(16), server_default="normal", nullable=False),
        sa.CheckConstraint("status IN ('normal', 'arrears', 'suspended', 'closed')",
                           name=op.f("ck_gas_accounts_status")),
        sa.PrimaryKeyConstraint("account_no", name=op.f("pk_gas_accounts")),
    )
    op.create_table(
        "work_orders",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("idem_key", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("line", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("detail", postgresql.JSONB(), server_default=_jsonb_empty(), nullable=False),
        sa.Column("account_no", sa.String(32), nullable=True),
        sa.Column("card_no", sa.String(19), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("priority", sa.String(16), server_default="normal", nullable=False),
        sa.Column("status", sa.String(16), server_default="open", nullable=False),
        sa.Column("eta_hours", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(),
                  nullable=False),
        sa.CheckConstraint("line IN ('oil', 'gas', 'general')", name=op.f("ck_work_orders_line")),
        sa.CheckConstraint("priority IN ('normal', 'urgent', 'emergency')",
                           name=op.f("ck_work_orders_priority")),
        sa.CheckConstraint("status IN ('open', 'dispatched', 'closed')",
                           name=op.f("ck_work_orders_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_orders")),
        sa.UniqueConstraint("idem_key", name=op.f("uq_work_orders_idem_key")),
        sa.UniqueConstraint("number", name=op.f("uq_work_orders_number")),
    )
    op.create_index("ix_work_orders_created_at", "work_orders", ["created_at"])
    op.create_table(
        "card_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("idem_key", sa.String(128), nullable=False),
        sa.Column("card_no", sa.String(19), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("result", postgresql.JSONB(), server_default=_jsonb_empty(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint("kind IN ('loss', 'unfreeze', 'cancel', 'invoice_resend')",
                           name=op.f("ck_card_events_kind")),
        sa.ForeignKeyConstraint(["card_no"], ["fuel_cards.card_no"],
                                name=op.f("fk_card_events_card_no_fuel_cards")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_events")),
        sa.UniqueConstraint("idem_key", name=op.f("uq_card_events_idem_key")),
        sa.UniqueConstraint("ref", name=op.f("uq_card_events_ref")),
    )
    op.create_index(op.f("ix_card_events_card_no"), "card_events", ["card_no"])
    op.create_table(
        "fuel_transactions",
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("card_no", sa.String(19), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("liters", sa.Numeric(precision=8, scale=2), nullable=True),
        sa.CheckConstraint("kind IN ('fuel', 'load', 'recharge')",
                           name=op.f("ck_fuel_transactions_kind")),
        sa.ForeignKeyConstraint(["card_no"], ["fuel_cards.card_no"],
                                name=op.f("fk_fuel_transactions_card_no_fuel_cards")),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_fuel_transactions")),
    )
    op.create_index("ix_fuel_transactions_card_at", "fuel_transactions", ["card_no", "at"])
    op.create_table(
        "gas_meters",
        sa.Column("meter_no", sa.String(20), nullable=False),
        sa.Column("account_no", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), server_default="normal", nullable=False),
        sa.Column("last_reading", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("last_read_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('ic_card', 'smart', 'mechanical')",
                           name=op.f("ck_gas_meters_kind")),
        sa.CheckConstraint("status IN ('normal', 'faulty', 'valve_closed', 'low_battery')",
                           name=op.f("ck_gas_meters_status")),
        sa.ForeignKeyConstraint(["account_no"], ["gas_accounts.account_no"],
                                name=op.f("fk_gas_meters_account_no_gas_accounts")),
        sa.PrimaryKeyConstraint("meter_no", name=op.f("pk_gas_meters")),
        sa.UniqueConstraint("account_no", name=op.f("uq_gas_meters_account_no")),
    )
    op.create_table(
        "gas_recharges",
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("account_no", sa.String(10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("credited", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("written_to_card", sa.Boolean(), server_default="false", nullable=False),
        sa.CheckConstraint("channel IN ('wechat', 'alipay', 'bank', 'counter', 'app')",
                           name=op.f("ck_gas_recharges_channel")),
        sa.ForeignKeyConstraint(["account_no"], ["gas_accounts.account_no"],
                                name=op.f("fk_gas_recharges_account_no_gas_accounts")),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_gas_recharges")),
    )
    op.create_index("ix_gas_recharges_account_at", "gas_recharges", ["account_no", "at"])
    op.create_table(
        "invoices",
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("idem_key", sa.String(128), nullable=False),
        sa.Column("card_no", sa.String(19), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("email", sa.String(128), nullable=True),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("status", sa.String(16), server_default="issued", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(),
                  nullable=False),
        sa.CheckConstraint("status IN ('issued', 'sent')", name=op.f("ck_invoices_status")),
        sa.ForeignKeyConstraint(["card_no"], ["fuel_cards.card_no"],
                                name=op.f("fk_invoices_card_no_fuel_cards")),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_invoices")),
        sa.UniqueConstraint("idem_key", name=op.f("uq_invoices_idem_key")),
    )
    op.create_index(op.f("ix_invoices_card_no"), "invoices", ["card_no"])


def downgrade() -> None:
    op.drop_index(op.f("ix_invoices_card_no"), table_name="invoices")
    op.drop_table("invoices")
    op.drop_index("ix_gas_recharges_account_at", table_name="gas_recharges")
    op.drop_table("gas_recharges")
    op.drop_table("gas_meters")
    op.drop_index("ix_fuel_transactions_card_at", table_name="fuel_transactions")
    op.drop_table("fuel_transactions")
    op.drop_index(op.f("ix_card_events_card_no"), table_name="card_events")
    op.drop_table("card_events")
    op.drop_index("ix_work_orders_created_at", table_name="work_orders")
    op.drop_table("work_orders")
    op.drop_table("gas_accounts")
    op.drop_index(op.f("ix_fuel_cards_main_card_no"), table_name="fuel_cards")
    op.drop_table("fuel_cards")
    op.execute("DROP SEQUENCE IF EXISTS work_order_no_seq")
    op.execute("DROP SEQUENCE IF EXISTS business_ref_seq")
