"""The agent desktop: a login, the screen-pop page and its websocket.

- ``GET /agent``: the desktop (logged in) or the login form
- ``GET /agent/review``: the reviewers' knowledge inbox page; ``/agent/agent.js``,
  ``common.js``, ``agent.css``, ``review.js``: the pages' assets (plain files, no build step)
- ``GET /agent/me`` -> ``{"agent", "role"}``
- ``POST /agent/login`` (form ``agent``, ``password``) sets the session cookie; a wrong password
  gets the form again with 401; a locked account (``ivr.web.login``) 429 with a Chinese message
  and ``Retry-After``; a right password without a desk role (ops) 403.
  ``POST /agent/logout`` revokes the session.
- ``GET /agent/ws?agent=agent1``: a websocket that sends the agent's current pop on connect (a
  late or reconnecting desktop gets it), then every update for that agent: offered (the phone
  rings), connected, summary (the LLM summary arrived), ended, withdrawn. Another agent's
  stream is refused (403).

Who may call what is in ``ivr.web.policy``; this module only decides what each page shows.

It reads from ``handoff/`` (the service in ``app[HANDOFF]``), never the other way round.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from ivr.web import policy
from ivr.web.auth import authenticate
from ivr.web.keys import HANDOFF
from ivr.web.login import LoginForm, form_login
from ivr.web.login import install as login_state
from ivr.web.login import logout as end_session

log = logging.getLogger("ivr.web.agent")

STATIC = Path(__file__).with_name("static")
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; "
                               "style-src 'self' 'unsafe-inline'",
}


def _login_page(error: str = "", status: int = 200) -> web.Response:
    html = (STATIC / "agent_login.html").read_text(encoding="utf-8")
    return web.Response(text=html.replace("<!--ERROR-->", error), status=status,
                        content_type="text/html", headers=HEADERS)


async def _desk_page(request: web.Request, name: str) -> web.StreamResponse:
    who = await authenticate(request)
    if who is None:
        return _login_page()
    if who.role not in policy.DESK.roles:
        return _login_page("该工号没有坐席权限。", 403)
    return web.FileResponse(STATIC / name, headers=HEADERS)


async def page(request: web.Request) -> web.StreamResponse:
    return await _desk_page(request, "agent.html")


async def review_page(request: web.Request) -> web.StreamResponse:
    """The reviewers' knowledge inbox (its API refuses other roles with 403)."""
    return await _desk_page(request, "review.html")


def _asset(name: str) -> web.RouteDef:
    async def serve(_request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})
    return web.get(f"/agent/{name}", serve)


LOGIN = LoginForm("agent desktop", _login_page, "/agent", policy.DESK.roles,
                  "该工号没有坐席权限。")


async def login(request: web.Request) -> web.Response:
    return await form_login(request, LOGIN)


async def logout(request: web.Request) -> web.Response:
    return await end_session(request, "/agent")


async def me(request: web.Request) -> web.Response:
    who = policy.principal(request)
    return web.json_response({"agent": who.user, "role": who.role}, headers=HEADERS)


def _public(envelope: dict[str, object]) -> str:
    return json.dumps({k: v for k, v in envelope.items() if k != "origin"}, ensure_ascii=False)


async def websocket(request: web.Request) -> web.StreamResponse:
    agent = policy.principal(request).user
    if request.query.get("agent", agent) != agent:
        raise web.HTTPForbidden(text="another agent's screen pops")
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text="cross-origin websocket")
    service = request.app.get(HANDOFF)
    if service is None:
        raise web.HTTPServiceUnavailable(text="handoff service not running")
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    updates = service.subscribe(agent)  # before reading the current pop: nothing is missed
    sender: asyncio.Task[None] | None = None
    try:
        await ws.send_str(json.dumps({"type": "hello", "agent": agent}))
        current = await service.current(agent)
        if current is not None:
            await ws.send_str(_public(service.envelope(current, "current", agent)))

        async def pump() -> None:
            while True:
                await ws.send_str(_public(await updates.get()))

        sender = asyncio.create_task(pump(), name=f"desktop-{agent}")
        async for msg in ws:  # the desktop only pings; reading also notices its close
            if msg.type == WSMsgType.TEXT and msg.data == "ping":
                await ws.send_str('{"type": "pong"}')
    except ConnectionResetError:
        pass  # the desktop went away mid-send: nothing to tell it
    finally:
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
                await sender
        service.unsubscribe(agent, updates)
    return ws


def setup(app: web.Application) -> None:
    login_state(app)
    app.router.add_get("/agent", page)
    app.router.add_get("/agent/review", review_page)
    app.router.add_routes([_asset(n) for n in ("common.js", "agent.js", "agent.css", "review.js",
                                                   "callbacks.js", "agentchat.js")])
    app.router.add_post("/agent/login", login)
    app.router.add_post("/agent/logout", logout)
    app.router.add_get("/agent/me", me)
    app.router.add_get("/agent/ws", websocket)
