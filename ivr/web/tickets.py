"""The ticket API of the agent desktop (智能填单).

Served under ``/agent/api/tickets`` (the desk's session; desk roles only, ``ivr.web.policy``;
below, ``/api/tickets`` stands for it). Only the agent who owns the handoff (the one
who answered it, or whose phone is ringing with it while nobody has answered) may read or
submit its ticket: anyone else gets 403, unauthenticated 401, an unknown handoff 404.

``GET  /api/tickets/types`` -> ``{"types": {line: {type: label}}, "priorities": {...}}``

``GET  /api/tickets/{handoff_id}`` -> ``{"handoff_id", "call_id", "draft": TICKET_VIEW,
"ticket_status": pending|ok|timeout|error|invalid|disabled|skipped, "ticket": STORED|null}``

``POST /api/tickets`` ``{"handoff_id", "line", "type", "account_tail", "problem",
"requested_action", "contact", "priority", "work_order"?: true}`` -> 201 (new) or 200
(resubmitted: same ticket number, fields updated) ``{"ticket": STORED, "created": bool,
"work_order_error": str|null}``; a form that does not validate: 400 ``{"error", "fields"}``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import ValidationError

from dialog.backends.demo_gas import DemoWorkOrders
from handoff.pop import ScreenPop
from handoff.ticket_store import TicketStore
from handoff.tickets import MASKED_PHONE, PRIORITY_LABELS, TICKET_TYPES, TicketForm
from ivr.core.storage.errors import StorageError
from ivr.web import policy
from ivr.web.jsonapi import BadBody, read_object
from ivr.web.jsonapi import json_error as _error
from ivr.web.jsonapi import json_ok as _json
from ivr.web.keys import HANDOFF, SESSIONS
from ivr.web.login import install as login_state

log = logging.getLogger("ivr.web.tickets")

TICKETS = web.AppKey("tickets", TicketStore)
PREFIX = "/agent/api/tickets"
MAX_BODY_BYTES = 16 * 1024
FIELD_LABELS = {"line": "业务线", "type": "工单类型", "account_tail": "卡号/户号",
                "problem": "问题描述", "requested_action": "处理要求", "contact": "联系电话",
                "priority": "优先级"}


def owns(pop: ScreenPop, agent: str) -> bool:
    """The agent who answered; before an answer, an agent whose phone rings with it."""
    if pop.agent is not None:
        return pop.agent == agent
    return agent in pop.offered_to


async def _owned_pop(request: web.Request, handoff_id: str) -> tuple[str, ScreenPop] | \
        web.Response:
    agent = policy.principal(request).user
    service = request.app.get(HANDOFF)
    if service is None or TICKETS not in request.app:
        return _error(503, "工单服务未启动")
    pop = await service.find_pop(handoff_id[:64]) if handoff_id else None
    if pop is None:
        return _error(404, "没有这个转接记录")
    if not owns(pop, agent):
        log.info("agent %s refused the ticket of handoff %s", agent, handoff_id[:8])
        return _error(403, "这不是您接听的来电，无权查看或提交工单")
    return agent, pop


async def types(_request: web.Request) -> web.Response:
    return _json({"types": TICKET_TYPES, "priorities": PRIORITY_LABELS})


async def get_ticket(request: web.Request) -> web.Response:
    owned = await _owned_pop(request, request.match_info["handoff_id"])
    if isinstance(owned, web.Response):
        return owned
    _agent, pop = owned
    try:
        stored = await request.app[TICKETS].get(pop.handoff_id)
    except StorageError as exc:
        log.warning("ticket read failed: %s", exc)
        return _error(503, "数据库暂不可用，请稍后重试")
    return _json({"handoff_id": pop.handoff_id, "call_id": pop.call_id, "draft": pop.ticket,
                  "ticket_status": pop.ticket_status, "ticket": stored})


async def submit(request: web.Request) -> web.Response:
    try:
        data = await read_object(request, MAX_BODY_BYTES)
    except BadBody as exc:
        return _error(400, str(exc))
    owned = await _owned_pop(request, str(data.get("handoff_id") or ""))
    if isinstance(owned, web.Response):
        return owned
    agent, pop = owned
    fields_in = {k: data[k] for k in FIELD_LABELS if k in data}
    if pop.caller and fields_in.get("contact") == pop.caller and "*" in pop.caller:
        try:  # the masked caller number the pop showed: the call record has it in full
            fields_in["contact"] = await request.app[TICKETS].caller_of(pop.call_id) or ""
        except StorageError as exc:
            log.warning("caller number of the call unavailable: %s", exc)
            return _error(503, "数据库暂不可用，工单未保存，请稍后重试")
    try:
        form = TicketForm.model_validate(fields_in)
    except ValidationError as exc:
        fields = sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]})
        names = "、".join(FIELD_LABELS.get(f, f) for f in fields) or "表单"
        return _error(400, f"请检查：{names}", fields=fields)
    if MASKED_PHONE.match(form.contact):  # masked, and not the caller's: nothing to call back
        return _error(400, "请检查：联系电话", fields=["contact"])
    meta = {"ticket_status": pop.ticket_status, "llm_filled": pop.ticket.get("llm_filled", []),
            "reason": pop.reason}
    try:
        result = await request.app[TICKETS].submit(
            handoff_id=pop.handoff_id, call_id=pop.call_id, agent=agent, form=form,
            work_order=bool(data.get("work_order", True)), meta=meta)
    except StorageError as exc:
        log.warning("ticket submit failed: %s", exc)
        return _error(503, "数据库暂不可用，工单未保存，请稍后重试")
    return _json({"ticket": result.ticket, "created": result.created,
                  "work_order_error": result.work_order_error},
                 201 if result.created else 200)


async def tickets_ctx(app: web.Application) -> AsyncIterator[None]:
    if SESSIONS in app:
        app[TICKETS] = TicketStore(app[SESSIONS], DemoWorkOrders(app[SESSIONS]))
    else:
        log.warning("no database in this app: the ticket API answers 503")
    yield


def setup(app: web.Application) -> None:
    login_state(app)
    app.router.add_get(f"{PREFIX}/types", types)
    app.router.add_get(f"{PREFIX}/{{handoff_id}}", get_ticket)
    app.router.add_post(PREFIX, submit)
    app.cleanup_ctx.append(tickets_ctx)
