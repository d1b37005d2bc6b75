"""The callback-task API of the agent desktop (回电任务; storage and rules in
``handoff.callback_desk``).

Served under ``/agent/api/callbacks`` (the desk's session; desk roles only, ``ivr.web.policy``:
operations staff never see customers' numbers here); 404 for an unknown task, 409 when the task
is another agent's or closed, 503 when the database (or, for a dial, Asterisk) is unavailable.

``GET  /agent/api/callbacks`` -> ``{"tasks": [TASK, ...]}``: pending tasks, oldest first
``POST /agent/api/callbacks/{id}/claim`` -> ``{"task": TASK}``: the task is now this agent's
``POST /agent/api/callbacks/{id}/dial`` -> ``{"task": TASK, "channel_id"}``: the agent's own phone
rings (``handoff.agent_endpoint``); once it is answered Asterisk dials the customer through
the dialer's endpoint (``[callback-out]`` in the dialplan) showing 956100
``POST /agent/api/callbacks/{id}/close`` ``{"status": "done"|"failed"|"cancelled", "note"}`` ->
``{"task": TASK}``
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from handoff.callback_desk import (
    CLOSED,
    CallbackConflict,
    CallbackDesk,
    CallbackNotFound,
    CallbackTask,
)
from ivr.core.privacy import mask_number
from ivr.core.storage.errors import StorageError
from ivr.telephony.ari.client import AriError
from ivr.web import policy
from ivr.web.jsonapi import BadBody, read_object
from ivr.web.jsonapi import json_error as _error
from ivr.web.jsonapi import json_ok as _json
from ivr.web.keys import ARI, SESSIONS, SETTINGS
from ivr.web.login import install as login_state

log = logging.getLogger("ivr.web.callbacks")

DESK = web.AppKey("callback_desk", CallbackDesk)
PREFIX = "/agent/api/callbacks"
MAX_BODY_BYTES = 8 * 1024
CALLBACK_CONTEXT = "callback-out"  # asterisk/conf/extensions.conf
AGENT_RING_S = 30


Handler = Callable[[web.Request, CallbackDesk, str, int], Awaitable[web.Response]]


def _task_route(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Login, the desk, the task id, and the desk's errors as HTTP answers."""

    async def route(request: web.Request) -> web.Response:
        agent = policy.principal(request).user
        desk = request.app.get(DESK)
        if desk is None:
            return _error(503, "回电任务服务未启动")
        try:
            task_id = int(request.match_info.get("id", "0"))
        except ValueError:
            return _error(404, "没有这个回电任务")
        try:
            return await handler(request, desk, agent, task_id)
        except CallbackNotFound:
            return _error(404, "没有这个回电任务")
        except CallbackConflict as exc:
            return _error(409, str(exc))
        except StorageError as exc:
            log.warning("callback task %s: %s", task_id, exc)
            return _error(503, "数据库暂不可用，请稍后重试")

    return route


async def _list(request: web.Request, desk: CallbackDesk, agent: str, _id: int) -> web.Response:
    return _json({"tasks": [t.view() for t in await desk.pending()]})


async def _claim(request: web.Request, desk: CallbackDesk, agent: str,
                 task_id: int) -> web.Response:
    task = await desk.claim(task_id, agent)
    log.info("callback task %d claimed by %s", task_id, agent)
    return _json({"task": task.view()})


async def _dial(request: web.Request, desk: CallbackDesk, agent: str,
                task_id: int) -> web.Response:
    task = await desk.claim(task_id, agent)  # must be free or this agent's: renews the claim
    number = task.caller_number
    if not number.isdigit():
        return _error(400, "来电号码无效或未显示，无法回拨，请关闭任务并备注")
    ari = request.app.get(ARI)
    if ari is None:
        return _error(503, "电话系统未连接，无法回拨")
    endpoint = request.app[SETTINGS].handoff.agent_endpoint.format(agent=agent)
    channel_id = f"callback-{task.id}-{uuid.uuid4().hex[:8]}"
    try:
        await ari.request("POST", "/channels", endpoint=endpoint, extension=number,
                          context=CALLBACK_CONTEXT, priority=1, channelId=channel_id,
                          callerId=f"回电 <{number}>", timeout=AGENT_RING_S)
    except (AriError, OSError) as exc:
        log.warning("callback task %d: ringing %s failed: %s", task_id, endpoint, exc)
        return _error(503, "无法呼叫您的话机，请确认话机已登录")
    task = await desk.dialed(task_id, agent)
    log.info("callback task %d: %s rings, then %s", task_id, endpoint, mask_number(number))
    return _json({"task": task.view(), "channel_id": channel_id})


async def _close(request: web.Request, desk: CallbackDesk, agent: str,
                 task_id: int) -> web.Response:
    try:
        data = await read_object(request, MAX_BODY_BYTES)
    except BadBody as exc:
        return _error(400, str(exc))
    status = data.get("status")
    if status not in CLOSED:
        return _error(400, "请选择处理结果：" + "、".join(CLOSED.values()))
    task: CallbackTask = await desk.close(task_id, agent, status, str(data.get("note") or ""))
    log.info("callback task %d closed by %s: %s", task_id, agent, status)
    return _json({"task": task.view()})


async def desk_ctx(app: web.Application) -> AsyncIterator[None]:
    if SESSIONS in app:
        app[DESK] = CallbackDesk(app[SESSIONS])
    else:
        log.warning("no database in this app: the callback-task API answers 503")
    yield


def setup(app: web.Application) -> None:
    login_state(app)
    app.router.add_get(PREFIX, _task_route(_list))
    app.router.add_post(PREFIX + "/{id}/claim", _task_route(_claim))
    app.router.add_post(PREFIX + "/{id}/dial", _task_route(_dial))
    app.router.add_post(PREFIX + "/{id}/close", _task_route(_close))
    app.cleanup_ctx.append(desk_ctx)
