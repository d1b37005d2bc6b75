"""The online channel's web side: the customer's chat page and websocket, the agent's chat socket.

- ``GET /chat`` (the page; ``?embed=1`` inside another site's iframe), ``/chat/chat.js``,
  ``/chat/chat.css``, ``/chat/embed.js`` (one script tag puts a 「在线客服」 button on any page):
  public. The page may be framed only by this site and ``chat.embed_origins``.
- ``GET /chat/ws[?token=…&after=N]``: the customer's websocket (public). Without a token a new
  chat opens (``chat.new_chats_*`` per client address; ``busy`` past ``chat.capacity``); with
  one, that chat resumes and the messages after ``after`` are sent again. Each connection may
  send ``chat.burst`` messages at once, then ``chat.per_minute``; a frame is at most
  ``MAX_FRAME`` bytes and a text ``chat.max_message_chars`` characters. Nothing sent is ever
  interpreted as HTML (the pages write text only, and the CSP allows no inline script).
- ``GET /agent/chat/ws``: an agent's chat socket (desk roles): ready toggle, accept, send,
  typing, close (``handoff.chatdesk``).

The JSON messages are described in ``ivr/web/static/chat.js`` and ``agentchat.js``' headers.
Sending never blocks a chat: each connection has a bounded outbox (``OUTBOX``); one that falls
behind is closed, and the browser reconnects and replays what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from ivr.calls.chat import ChatRoom
from ivr.web import policy
from ivr.web.keys import CHAT, CHAT_DESK, SETTINGS
from ivr.web.ratelimit import Buckets, TokenBucket

log = logging.getLogger("ivr.web.chat")

STATIC = Path(__file__).with_name("static")
MAX_FRAME = 8 * 1024
OUTBOX = 256
TYPING_EVERY_S = 1.0
UNLIMITED = frozenset({"end", "rate"})  # leaving and rating are never refused for speed
NEW_CHATS = web.AppKey("chat_new_chats", Buckets)
ERRORS = {
    "too_fast": "您发送得太快了，请稍后再试。",
    "too_long": "消息太长了，请分开发送。",
    "bad_message": "无法识别这条消息。",
    "busy": "当前咨询人数较多，请稍后再试。",
    "expired": "会话已过期，请重新咨询。",
    "unavailable": "在线客服暂时无法使用，请拨打956100热线。",
}


class Outbox:
    """One websocket's bounded, ordered sender (``send`` never blocks)."""

    def __init__(self, ws: web.WebSocketResponse, name: str) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(OUTBOX)
        self.task = asyncio.create_task(self._pump(), name=name)
        self.overflowed = False

    def send(self, message: dict[str, Any]) -> bool:
        if self.overflowed:
            return False
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:  # too slow a reader: close; it replays after reconnecting
            self.overflowed = True
            self.task.cancel()
            asyncio.get_running_loop().create_task(self.ws.close())
            return False
        return True

    async def _pump(self) -> None:
        with contextlib.suppress(ConnectionResetError):
            while (message := await self.queue.get()) is not None:
                await self.ws.send_str(json.dumps(message, ensure_ascii=False))

    async def close(self) -> None:
        if not self.task.done():
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self.task, 2.0)


def _headers(request: web.Request, *, page: bool) -> dict[str, str]:
    embed = " ".join(request.app[SETTINGS].chat.embed_origins)
    headers = {"Cache-Control": "no-store" if page else "no-cache",
               "X-Content-Type-Options": "nosniff"}
    if page:
        headers["Content-Security-Policy"] = (
            "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; "
            f"frame-ancestors 'self' {embed}".rstrip() + ";")
        headers["Referrer-Policy"] = "no-referrer"
    return headers


async def page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "chat.html", headers=_headers(request, page=True))


def _asset(name: str) -> web.RouteDef:
    async def serve(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / name, headers=_headers(request, page=False))
    return web.get(f"/chat/{name}", serve)


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return not origin or policy.same_site(request, origin)


def _client(request: web.Request) -> str:
    return request.remote or "unknown"


async def _refuse(ws: web.WebSocketResponse, code: str) -> web.WebSocketResponse:
    await ws.send_str(json.dumps({"type": "error", "code": code, "text": ERRORS[code]},
                                 ensure_ascii=False))
    await ws.close()
    return ws


def _after(request: web.Request) -> int:
    try:
        return max(0, int(request.query.get("after", "0")))
    except ValueError:
        return 0


async def _objects(ws: web.WebSocketResponse) -> AsyncIterator[dict[str, Any] | None]:
    """The JSON objects a socket sends (None for a text frame that is not one)."""
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        try:
            data = json.loads(msg.data)
        except (ValueError, RecursionError):  # not JSON, or nested past Python's stack
            data = None
        yield data if isinstance(data, dict) else None


async def customer_socket(request: web.Request) -> web.StreamResponse:
    if not _same_origin(request):
        raise web.HTTPForbidden(text="cross-origin websocket")
    hub = request.app.get(CHAT)
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_FRAME)
    await ws.prepare(request)
    if hub is None:
        return await _refuse(ws, "unavailable")
    token = request.query.get("token", "")
    room: ChatRoom | None
    if token:
        room = hub.find(token)
        if room is None:
            return await _refuse(ws, "expired")
    else:
        if not request.app[NEW_CHATS].take(_client(request)):
            return await _refuse(ws, "too_fast")
        room = hub.open()
        if room is None:
            return await _refuse(ws, "busy")
    settings = request.app[SETTINGS].chat
    out = Outbox(ws, f"chat-out-{room.chat_id[:8]}")
    resumed = bool(token)
    replay = room.attach(out.send, _after(request))
    out.send({"type": "hello", "chat": room.chat_id, "token": room.token, "resumed": resumed,
              "resume_s": room.resume_s})
    for message in replay:
        out.send(message)
    bucket = TokenBucket(settings.burst, settings.per_minute)
    last_typing = 0.0
    try:
        async for data in _objects(ws):
            if data is None:
                out.send({"type": "error", "code": "bad_message", "text": ERRORS["bad_message"]})
                continue
            kind = data.get("type")
            if kind == "typing":
                now = time.monotonic()
                if now - last_typing < TYPING_EVERY_S and data.get("on"):
                    continue
                last_typing = now
            elif kind not in UNLIMITED and not bucket.take():
                out.send({"type": "error", "code": "too_fast", "text": ERRORS["too_fast"]})
                continue
            code = room.receive(data)
            if code is not None:
                out.send({"type": "error", "code": code, "text": ERRORS[code]})
    finally:
        room.detach(out.send)
        await out.close()
    return ws


async def agent_socket(request: web.Request) -> web.StreamResponse:
    agent = policy.principal(request).user
    if not _same_origin(request):
        raise web.HTTPForbidden(text="cross-origin websocket")
    desk = request.app.get(CHAT_DESK)
    if desk is None:
        raise web.HTTPServiceUnavailable(text="web chat not running")
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_FRAME)
    await ws.prepare(request)
    out = Outbox(ws, f"chat-agent-{agent}")
    for message in desk.connect(agent, out.send):
        out.send(message)
    try:
        async for data in _objects(ws):
            if data is None:
                continue
            kind, chat = data.get("type"), str(data.get("chat", ""))
            error: str | None = None
            if kind == "ready":
                desk.set_ready(agent, bool(data.get("on")))
            elif kind == "accept":
                error = desk.accept(agent, chat)
            elif kind == "send":
                error = desk.send(agent, chat, str(data.get("text", "")))
            elif kind == "typing":
                desk.typing(agent, chat, bool(data.get("on")))
            elif kind == "close":
                error = desk.close_chat(agent, chat)
            if error is not None:
                out.send({"type": "error", "text": error})
    finally:
        desk.disconnect(agent, out.send)
        await out.close()
    return ws


def setup(app: web.Application) -> None:
    s = app[SETTINGS].chat
    app[NEW_CHATS] = Buckets(s.new_chats_burst, s.new_chats_per_minute)
    app.router.add_get("/chat", page)
    app.router.add_routes([_asset(n) for n in ("chat.js", "chat.css", "embed.js")])
    app.router.add_get("/chat/ws", customer_socket)
    app.router.add_get("/agent/chat/ws", agent_socket)
