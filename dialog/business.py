"""Business actions the bots call by name (``action: fuel.balance``), over the back-end adapters.

An action takes the step's templated ``args`` plus the engine's ``_slots``, ``_vars`` and
``_idem`` (a key unique to the call, bot and step, so a retried turn never writes twice) and
returns flat values the bot's replies use (``{balance}``, ``{order_no}``). A refusal the caller
should hear is ``ActionRefused`` with a complete Chinese sentence; an unreachable back end is
refused with the "system busy" message, and the bot decides (``on_error``) what happens next.

The spoken text uses digits ("1280.50元"); the TTS front end reads them out in Chinese.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from dialog.backends.base import (
    CARD_STATUS_ZH,
    CHANNEL_ZH,
    GAS_ACCOUNT_STATUS_ZH,
    METER_KIND_ZH,
    METER_STATUS_ZH,
    TRANSACTION_KIND_ZH,
    BackendError,
    Backends,
    BackendUnavailable,
    Priority,
    VerifyKind,
)
from dialog.engine import ActionFn, ActionRefused
from dialog.prompts import P
from ivr.core.lines import as_line

log = logging.getLogger(__name__)

Args = dict[str, Any]
Impl = Callable[[Backends, Args], Awaitable[dict[str, Any]]]
_REGISTRY: dict[str, Impl] = {}


def action(name: str) -> Callable[[Impl], Impl]:
    def register(fn: Impl) -> Impl:
        _REGISTRY[name] = fn
        return fn

    return register


def action_names() -> frozenset[str]:
    """Every action a bot file may name (``ivr bots lint`` checks against it)."""
    return frozenset(_REGISTRY)


DEADLINE_S = 2.5  # a back-end answer later than this is no answer: the caller hears why


def build_actions(backends: Backends, *, today: Callable[[], date] | None = None,
                  deadline_s: float = DEADLINE_S) -> dict[str, ActionFn]:
    """The action table for ``DialogEngine``: each registered action bound to ``backends``.
    An action not done within ``deadline_s`` (a slow database, a hung business system) is
    given up as unavailable, so the caller never waits in silence longer than that; a write
    given up is rolled back with its transaction, and its idempotency key makes a retry safe."""
    clock = today or date.today

    def bind(name: str, impl: Impl) -> ActionFn:
        async def run(args: dict[str, Any]) -> dict[str, Any]:
            args = {**args, "_today": clock()}
            try:
                return await asyncio.wait_for(impl(backends, args), deadline_s)
            except TimeoutError as exc:
                log.error("action %s: no answer from the back end in %.1f s", name, deadline_s)
                raise ActionRefused(P["system_busy"], unavailable=True) from exc
            except BackendUnavailable as exc:
                log.error("action %s: back end unavailable: %s", name, exc.detail)
                raise ActionRefused(exc.message_zh, unavailable=True) from exc
            except BackendError as exc:
                log.info("action %s refused: %s", name, exc.detail or type(exc).__name__)
                raise ActionRefused(exc.message_zh) from exc
            except (KeyError, ValueError) as exc:
                log.warning("action %s: bad arguments from the bot: %s", name, exc)
                raise ActionRefused(P["system_busy"]) from exc
            except OSError as exc:
                log.error("action %s: back end unreachable: %s", name, type(exc).__name__)
                raise ActionRefused(P["system_busy"], unavailable=True) from exc

        return run

    return {name: bind(name, impl) for name, impl in _REGISTRY.items()}


# ---- helpers -------------------------------------------------------------------------------
def _slot(args: Args, name: str) -> str:
    value = args["_slots"].get(name)
    if value in (None, ""):
        raise KeyError(f"slot {name!r} not filled")
    return str(value)


def _card(args: Args) -> str:
    return _slot(args, "card_number")


def _account(args: Args) -> str:
    return _slot(args, "gas_account")


def _idem(args: Args) -> str:
    return str(args.get("_idem") or "")


def money(value: Decimal | int | float) -> str:
    """128.5 -> "128.50"; 300 -> "300" (read as 三百元, not 三百点零零元)."""
    d = Decimal(value).quantize(Decimal("0.01"))
    return str(d.quantize(Decimal("1"))) if d == d.to_integral() else str(d)


def day_zh(at: date | datetime) -> str:
    return f"{at.month}月{at.day}日"


def _period(args: Args, today: date) -> tuple[date, date, str]:
    period = str(args.get("period") or "month")
    if period == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end, f"{end.month}月份"
    if period == "this_month":
        return today.replace(day=1), today, "本月"
    if period == "quarter":
        return today - timedelta(days=90), today, "最近三个月"
    return today - timedelta(days=30), today, "最近一个月"


# ---- identity ------------------------------------------------------------------------------
async def _guarded(b: Backends, kind: VerifyKind, number: str,
                   check: Callable[[], Awaitable[bool]]) -> dict[str, Any]:
    """``check`` the secret under the verification lockout (``dialog.backends.locks``): a
    locked number is refused without checking (``locked: True``, no oracle); a failure is
    counted across calls, and the failure that locks the number answers ``locked`` at once."""
    locks = b.locks
    if locks is None:
        return {"ok": await check(), "locked": False}
    if (await locks.locked(kind, number)).locked:
        log.info("verify.%s refused: locked after repeated failures", kind)
        return {"ok": False, "locked": True}
    if await check():
        await locks.succeeded(kind, number)
        return {"ok": True, "locked": False}
    state = await locks.failed(kind, number)
    if state.locked:
        log.warning("verify.%s: locked after %d failures", kind, state.failures)
    return {"ok": False, "locked": state.locked}


@action("verify.fuel_card")
async def verify_fuel_card(b: Backends, args: Args) -> dict[str, Any]:
    card = _card(args)
    slots = args["_slots"]

    def check() -> Awaitable[bool]:
        return b.fuel.verify(card, pin=slots.get("pin"), id_tail=slots.get("id_tail"))

    return {**await _guarded(b, "fuel_card", card, check), "card_tail": card[-4:]}


@action("verify.gas_account")
async def verify_gas_account(b: Backends, args: Args) -> dict[str, Any]:
    account = _account(args)
    slots = args["_slots"]

    def check() -> Awaitable[bool]:
        return b.gas.verify(account, id_tail=slots.get("id_tail"),
                            phone_tail=slots.get("phone_tail"))

    return {**await _guarded(b, "gas_account", account, check), "account_tail": account[-4:]}


# ---- fuel cards ----------------------------------------------------------------------------
@action("fuel.balance")
async def fuel_balance(b: Backends, args: Args) -> dict[str, Any]:
    card = await b.fuel.card(_card(args))
    pending = await b.fuel.loads_pending(card.card_no)
    note = "状态正常" if card.status == "normal" else f"目前{CARD_STATUS_ZH[card.status]}"
    return {
        "card_tail": card.card_no[-4:], "balance": money(card.balance), "points": card.points,
        "status": card.status, "status_zh": CARD_STATUS_ZH[card.status], "status_note": note,
        "pending_load": money(pending), "has_pending_load": pending > 0,
        "is_main": card.is_main,
        "main_tail": card.main_card_no[-4:] if card.main_card_no else "",
    }


@action("fuel.transactions")
async def fuel_transactions(b: Backends, args: Args) -> dict[str, Any]:
    start, end, name = _period(args, args["_today"])
    kind = args.get("kind") or None
    rows = await b.fuel.transactions(_card(args), start, end, limit=5 if kind is None else 20)
    if kind:
        rows = [r for r in rows if r.kind == kind][:5]
    if not rows:
        return {"tx_count": 0, "tx_summary": f"您的加油卡{name}没有交易记录。"}
    parts = []
    for r in rows[:3]:
        what = TRANSACTION_KIND_ZH[r.kind]
        parts.append(f"{day_zh(r.at)}在{r.station}{what}{money(r.amount)}元")
    total = sum((r.amount for r in rows if r.kind == "fuel"), Decimal(0))
    summary = f"您的加油卡{name}最近{len(parts)}笔交易：" + "；".join(parts) + "。"
    if total and not kind:
        summary += f"以上期间加油合计{money(total)}元。"
    return {"tx_count": len(rows), "tx_summary": summary, "tx_total": money(total)}


@action("fuel.report_loss")
async def fuel_report_loss(b: Backends, args: Args) -> dict[str, Any]:
    report = await b.fuel.report_loss(_card(args), idem_key=_idem(args))
    return {"loss_ref": report.ref}


@action("fuel.unfreeze")
async def fuel_unfreeze(b: Backends, args: Args) -> dict[str, Any]:
    done = await b.fuel.unfreeze(_card(args), idem_key=_idem(args))
    return {"unfreeze_ref": done.ref}


@action("fuel.cancel")
async def fuel_cancel(b: Backends, args: Args) -> dict[str, Any]:
    done = await b.fuel.cancel(_card(args), idem_key=_idem(args))
    return {"cancel_ref": done.ref, "refund": money(done.refund)}


# ---- invoices ------------------------------------------------------------------------------
@action("invoice.issue")
async def invoice_issue(b: Backends, args: Args) -> dict[str, Any]:
    start, end, name = _period(args, args["_today"])
    card = _card(args)
    inv = await b.invoices.issue(card, start=start, end=end, title=args.get("title") or "个人",
                                 email=None, idem_key=_idem(args))
    return {"period_name": name, "invoice_amount": money(inv.amount), "invoice_ref": inv.ref}


@action("invoice.resend")
async def invoice_resend(b: Backends, args: Args) -> dict[str, Any]:
    """Send the newest e-invoice again, to the e-mail address it was issued to."""
    invoices = await b.invoices.list_invoices(_card(args))
    sent = next((i for i in invoices if i.email), None)
    if sent is None or sent.email is None:
        raise BackendError("没有查到发送过邮箱的电子发票。您可以在加油卡网上营业厅下载发票。")
    again = await b.invoices.resend(sent.ref, sent.email, idem_key=_idem(args))
    return {"invoice_ref": again.ref, "invoice_amount": money(again.amount),
            "email_hint": "开票时预留的邮箱"}


# ---- gas -----------------------------------------------------------------------------------
@action("gas.account")
async def gas_account(b: Backends, args: Args) -> dict[str, Any]:
    acc = await b.gas.account(_account(args))
    return {
        "account_tail": acc.account_no[-4:], "gas_balance": money(acc.balance),
        "arrears": money(acc.arrears), "has_arrears": acc.arrears > 0,
        "account_status": acc.status,
        "account_status_zh": GAS_ACCOUNT_STATUS_ZH.get(acc.status, acc.status),
        "address": acc.address_masked,
    }


@action("gas.last_recharge")
async def gas_last_recharge(b: Backends, args: Args) -> dict[str, Any]:
    account = _account(args)
    recharges = await b.gas.recharges(account, limit=1)
    acc = await b.gas.account(account)
    if not recharges:
        raise BackendError("没有查到这个户号最近的充值记录。")
    r = recharges[0]
    return {
        "recharge_date": day_zh(r.at), "recharge_amount": money(r.amount),
        "recharge_channel": CHANNEL_ZH.get(r.channel, r.channel), "credited": r.credited,
        "written_to_card": r.written_to_card, "balance": money(acc.balance),
        "recharge_ref": r.ref,
    }


@action("gas.meter")
async def gas_meter(b: Backends, args: Args) -> dict[str, Any]:
    m = await b.gas.meter(_account(args))
    return {
        "meter_kind": m.kind, "meter_kind_zh": METER_KIND_ZH.get(m.kind, m.kind),
        "meter_status": m.status, "meter_status_zh": METER_STATUS_ZH.get(m.status, m.status),
        "meter_ok": m.status == "normal",
        "meter_reading": money(m.last_reading) if m.last_reading is not None else "",
    }


# ---- work orders ---------------------------------------------------------------------------
_PRIORITIES: dict[str, Priority] = {"normal": "normal", "urgent": "urgent",
                                    "emergency": "emergency"}


@action("workorder.create")
async def workorder_create(b: Backends, args: Args) -> dict[str, Any]:
    """Args: kind, subject, line (oil|gas|general, default from the identity filled),
    priority, phone; every filled slot not marked secret goes into the order's detail."""
    slots: dict[str, Any] = args["_slots"]
    account = slots.get("gas_account")
    card = slots.get("card_number")
    line = as_line(args.get("line") or ("gas" if account else "oil" if card else "general"))
    detail = {k: v for k, v in slots.items()
              if k not in ("pin", "id_tail", "phone_tail", "card_number", "gas_account")}
    order = await b.work_orders.create(
        kind=str(args["kind"]), line=line, subject=str(args.get("subject") or args["kind"]),
        detail=detail, account=account, card=card,
        phone=str(args.get("phone") or slots.get("phone") or "") or None,
        priority=_PRIORITIES[str(args.get("priority") or "normal")], idem_key=_idem(args),
    )
    return {"order_no": order.number, "eta_hours": order.eta_hours}
