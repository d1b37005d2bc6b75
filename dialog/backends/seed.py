"""Demo data for the demo back end: ``await seed_demo(sessions, today=...)``.

Idempotent: rows that exist (same card, account, transaction or invoice number) are left as they
are, so seeding again never undoes what calls changed. Dates are relative to ``today`` (China
date; default the current one), so tests passing a fixed ``today`` are stable.

Demo credentials (also ``demo_credentials()``, by scenario; PIN = 6 digits, ID tail = last 6
characters of the holder's ID number, phone tail = last 4 digits):

Fuel cards (``FuelCardSystem``)
  =====================  ========  =======  ======  ==========================================
  card_no                holder    PIN      ID尾号  status / use
  =====================  ========  =======  ======  ==========================================
  9001010000012345678    张伟      123456   10331X  normal, main card 1280.50元, 2 sub-cards
  9001010000012345679    张伟      234567   10331X  normal, sub-card 300.00元, 200.00元 待圈存
  9001010000012345680    张伟      246810   10331X  normal, sub-card 150.00元
  9001020000023456781    李娜      654321   280046  normal, personal card 560.00元 (loss demo)
  9001020000023456782    王强      112233   051218  lost, 890.20元
  9001020000023456783    刘洋      445566   170925  frozen, 45.80元
  9001020000023456784    陈静      778899   300612  cancelled
  9001030000034567895    赵磊      135790   08123X  normal, personal card 2350.00元 (cancel demo)
  =====================  ========  =======  ======  ==========================================

The main card's fuel of the month before last is already invoiced (one e-invoice, sent to
finance@shunda-demo.cn), so an invoice request overlapping that month is refused.

Gas accounts (``GasBilling``)
  ==========  ======  ======  ======  =================================================
  account_no  holder  ID尾号  手机尾号  use
  ==========  ======  ======  ======  =================================================
  3100012345  孙丽    20018X  8899    IC-card meter; last recharge 200元 NOT credited (充值不到账)
  3100023456  周杰    150327  6621    smart meter, all recharges credited
  3100034567  吴敏    091145  3077    IC-card meter; last recharge credited, not written to card
  3100045678  郑浩    260533  5160    mechanical meter, arrears 235.60元
  3100056789  冯雪    040729  7412    smart meter FAULTY (表具故障)
  3100067890  何军    11205X  9035    supply suspended (停气), valve closed
  ==========  ======  ======  ======  =================================================
"""

from __future__ import annotations

import asyncio
import copy
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from dialog.backends._pg import china_now, day_start
from dialog.backends.hashing import hash_secret
from dialog.backends.tables import (
    FuelCardRow,
    FuelTransactionRow,
    GasAccountRow,
    GasMeterRow,
    GasRechargeRow,
    InvoiceRow,
)
from ivr.core.storage.db import SessionFactory

MAIN = "9001010000012345678"
D = Decimal

# card_no, holder, pin, id_tail, status, balance, points, pending_load, is_main, main, scenario
_CARDS: list[tuple[str, str, str, str, str, str, int, str, bool, str | None, str]] = [
    (MAIN, "张伟", "123456", "10331X", "normal", "1280.50", 3560, "0", True, None, "main"),
    ("9001010000012345679", "张伟", "234567", "10331X", "normal", "300.00", 420, "200.00",
     False, MAIN, "sub_pending_load"),
    ("9001010000012345680", "张伟", "246810", "10331X", "normal", "150.00", 180, "0",
     False, MAIN, "sub"),
    ("9001020000023456781", "李娜", "654321", "280046", "normal", "560.00", 1210, "0",
     False, None, "normal"),
    ("9001020000023456782", "王强", "112233", "051218", "lost", "890.20", 2045, "0",
     False, None, "lost"),
    ("9001020000023456783", "刘洋", "445566", "170925", "frozen", "45.80", 96, "0",
     False, None, "frozen"),
    ("9001020000023456784", "陈静", "778899", "300612", "cancelled", "0", 0, "0",
     False, None, "cancelled"),
    ("9001030000034567895", "赵磊", "135790", "08123X", "normal", "2350.00", 5230, "0",
     False, None, "cancellable"),
]

# account_no, holder, address, id_tail, phone_tail, balance, arrears, status, scenario,
# meter (meter_no, kind, status, reading)
_ACCOUNTS: list[tuple[str, str, str, str, str, str, str, str, str, tuple[str, str, str, str]]] = [
    ("3100012345", "孙丽", "北京市朝阳区望京西园三区312号楼2单元501", "20018X", "8899",
     "86.40", "0", "normal", "recharge_not_credited", ("IC2019000123", "ic_card", "normal",
                                                       "1523.60")),
    ("3100023456", "周杰", "北京市海淀区学院路甲5号院6号楼1203", "150327", "6621",
     "312.00", "0", "normal", "smart_meter", ("NB2022004567", "smart", "normal", "876.25")),
    ("3100034567", "吴敏", "北京市丰台区方庄芳城园一区8号楼704", "091145", "3077",
     "150.00", "0", "normal", "not_written_to_card", ("IC2018007788", "ic_card", "normal",
                                                     "2210.90")),
    ("3100045678", "郑浩", "北京市西城区白纸坊东街15号院3号楼402", "260533", "5160",
     "0", "235.60", "arrears", "arrears", ("JX2015001122", "mechanical", "normal", "4388.00")),
    ("3100056789", "冯雪", "北京市通州区新华西街58号院2号楼1601", "040729", "7412",
     "58.20", "0", "normal", "meter_faulty", ("NB2021009911", "smart", "faulty", "1032.70")),
    ("3100067890", "何军", "北京市昌平区回龙观龙泽苑东区16号楼305", "11205X", "9035",
     "0", "512.30", "suspended", "suspended", ("IC2017003344", "ic_card", "valve_closed",
                                               "3120.40")),
]

STATIONS = (
    "中石化北京朝阳加油站", "中石化北京望京加油站", "中石化北京亦庄加油站",
    "中石油北京西三环加油站", "中石化北京海淀学院路加油站", "中石化北京通州运河加油站",
    "中石油北京昌平回龙观加油站",
)
PRICE_92 = D("7.52")  # 元/升, 92号汽油


def demo_credentials() -> dict[str, Any]:
    """``{"fuel": {scenario: {...}}, "gas": {scenario: {...}}}`` (a fresh copy each call).

    Fuel entries: card_no, pin, id_tail, holder, status. Gas entries: account_no, id_tail,
    phone_tail, holder. Scenarios are the last column of the tables in the module docstring.
    """
    fuel = {
        c[10]: {"card_no": c[0], "holder": c[1], "pin": c[2], "id_tail": c[3], "status": c[4]}
        for c in _CARDS
    }
    gas = {
        a[8]: {"account_no": a[0], "holder": a[1], "id_tail": a[3], "phone_tail": a[4]}
        for a in _ACCOUNTS
    }
    return copy.deepcopy({"fuel": fuel, "gas": gas})


def _at(today: date, days_ago: int, hour: int, minute: int) -> datetime:
    return day_start(today - timedelta(days=days_ago)) + timedelta(hours=hour, minutes=minute)


def _transactions(card_no: str, today: date) -> list[dict[str, Any]]:
    """3 to 10 transactions over the last 90 days, the same for the same card and day."""
    rng = random.Random(int(card_no[-8:]))
    rows = []
    for i in range(3 + int(card_no[-4:]) % 8):
        days = rng.randint(1, 89)
        at = _at(today, days, rng.randint(7, 21), rng.randint(0, 59))
        kind = "fuel" if i % 4 else ("load" if card_no != MAIN else "recharge")
        if kind == "fuel":
            liters = D(rng.randint(2000, 5500)) / 100
            amount, litres_value = (liters * PRICE_92).quantize(D("0.01")), liters
        else:
            amount, litres_value = D(rng.choice((200, 500, 1000))), None
        rows.append({
            "ref": f"T{card_no[-6:]}{(today - timedelta(days=days)):%Y%m%d}{i:02d}",
            "card_no": card_no, "at": at, "station": rng.choice(STATIONS),
            "amount": amount, "kind": kind, "liters": litres_value,
        })
    return rows


def _recharges(account: tuple[Any, ...], today: date) -> list[dict[str, Any]]:
    account_no, scenario, kind = account[0], account[8], account[9][1]
    rows = []
    for i, (days, amount, channel) in enumerate(
        [(75, "300.00", "bank"), (40, "200.00", "alipay"), (2, "200.00", "wechat")]
    ):
        latest = i == 2
        credited = not (scenario == "recharge_not_credited" and latest)
        written = credited and kind != "mechanical"
        if scenario == "not_written_to_card" and latest:
            written = False
        rows.append({
            "ref": f"CZ{(today - timedelta(days=days)):%Y%m%d}{account_no[-4:]}{i}",
            "account_no": account_no, "at": _at(today, days, 20, 15 + i),
            "amount": D(amount), "channel": channel, "credited": credited,
            "written_to_card": written,
        })
    return rows


def _invoice(today: date) -> list[dict[str, Any]]:
    """The main card's e-invoice for its fuel of the month before last (none if it had none)."""
    first_this = today.replace(day=1)
    end = (first_this - timedelta(days=1)).replace(day=1) - timedelta(days=1)
    start = end.replace(day=1)
    lo, hi = day_start(start), day_start(end + timedelta(days=1))
    amount = sum((t["amount"] for t in _transactions(MAIN, today)
                  if t["kind"] == "fuel" and lo <= t["at"] < hi), D("0.00"))
    if not amount:
        return []
    return [{
        "ref": f"FP{end:%Y%m}900001", "idem_key": f"seed:invoice:{MAIN}:{start:%Y%m}",
        "card_no": MAIN, "period_start": start, "period_end": end,
        "title": "北京顺达物流有限公司", "email": "finance@shunda-demo.cn", "amount": amount,
        "status": "sent", "created_at": _at(today, (today - end).days - 3, 10, 30),
    }]


def _hash_rows(specs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(hash_secret(a), hash_secret(b)) for a, b in specs]


async def seed_demo(sessions: SessionFactory, *, today: date | None = None) -> dict[str, int]:
    """Insert the demo rows that are missing; return how many rows were added per table."""
    today = today or china_now().date()
    added: dict[str, int] = {}
    async with sessions() as s, s.begin():
        have_cards = set((await s.execute(select(FuelCardRow.card_no))).scalars())
        have_accounts = set((await s.execute(select(GasAccountRow.account_no))).scalars())
        cards = [c for c in _CARDS if c[0] not in have_cards]
        accounts = [a for a in _ACCOUNTS if a[0] not in have_accounts]
        card_hashes = await asyncio.to_thread(_hash_rows, [(c[2], c[3]) for c in cards])
        account_hashes = await asyncio.to_thread(_hash_rows, [(a[3], a[4]) for a in accounts])

        # main cards first: sub-cards refer to them
        card_rows = [
            {"card_no": c[0], "holder_name": c[1], "pin_hash": h[0], "id_tail_hash": h[1],
             "status": c[4], "balance": D(c[5]), "points": c[6], "pending_load": D(c[7]),
             "is_main": c[8], "main_card_no": c[9], "updated_at": _at(today, 30, 9, 0)}
            for c, h in zip(cards, card_hashes, strict=True)
        ]
        added["fuel_cards"] = 0
        for batch in ([r for r in card_rows if r["main_card_no"] is None],
                      [r for r in card_rows if r["main_card_no"] is not None]):
            added["fuel_cards"] += await _insert(s, FuelCardRow, batch)
        txs = [t for c in _CARDS for t in _transactions(c[0], today)]
        added["fuel_transactions"] = await _insert(s, FuelTransactionRow, txs)
        added["invoices"] = await _insert(s, InvoiceRow, _invoice(today))

        added["gas_accounts"] = await _insert(s, GasAccountRow, [
            {"account_no": a[0], "holder_name": a[1], "address": a[2], "id_tail_hash": h[0],
             "phone_tail_hash": h[1], "balance": D(a[5]), "arrears": D(a[6]), "status": a[7]}
            for a, h in zip(accounts, account_hashes, strict=True)
        ])
        added["gas_meters"] = await _insert(s, GasMeterRow, [
            {"meter_no": a[9][0], "account_no": a[0], "kind": a[9][1], "status": a[9][2],
             "last_reading": D(a[9][3]), "last_read_at": _at(today, 3, 8, 0)}
            for a in _ACCOUNTS
        ])
        added["gas_recharges"] = await _insert(
            s, GasRechargeRow, [r for a in _ACCOUNTS for r in _recharges(a, today)]
        )
    return added


async def _insert(s: Any, table: Any, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    stmt = insert(table).values(rows).on_conflict_do_nothing().returning(
        *table.__table__.primary_key.columns
    )
    return len((await s.execute(stmt)).all())
