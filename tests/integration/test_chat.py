"""The online channel end to end over real websockets: a web-chat-only server (``ivr up
--chat-only``: the published bots, the journal, screen pops, the agent desk, ratings) on a
scratch PostgreSQL database and the session's Redis.

Self-service to the end (balance by card and PIN, the PIN never echoed, stored or logged), a
handoff to an agent (offer, accept, the pop, talk both ways, a customer who drops and resumes,
the agent closes, the rating lands in the survey results), and the limits (size, rate, bad
messages, an unknown resume token)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from campaigns.chatcsat import CHAT_CAMPAIGN
from campaigns.report import campaign_results
from campaigns.tables import Campaign
from ivr.core.config import Settings, load_settings
from ivr.core.storage.db import create_engine, scratch_database, session_factory
from ivr.core.storage.models import Call
from ivr.sim.desk import dev_desk_headers
from tests.demo_data import FUEL

CACHE = Path.home() / ".cache" / "ivr"
PORT = 18796
CARD = next(iter(FUEL.values()))
Msg = dict[str, Any]


@pytest.fixture(scope="module")
async def chat_server(pg_url: str, redis_url: str,
                      tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Settings]:
    from ivr.app.build import build_app

    async with scratch_database(pg_url, "ivr_test_chat") as url:
        settings = load_settings(
            home=tmp_path_factory.mktemp("chat-home"), database={"url": url},
            redis={"url": redis_url}, web={"port": PORT},
            nlu={"cache_dir": CACHE / "test-embeddings"}, dialog={"privacy_notice": ""},
            handoff={"llm_summary": False}, retention={"enabled": False},
            chat={"burst": 8, "per_minute": 40, "offer_timeout_s": 5.0})
        app = build_app(settings, chat_only=True)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", PORT).start()
        try:
            yield settings
        finally:
            await runner.cleanup()


class Peer:
    """One websocket and everything it received."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[Msg] = []

    async def until(self, kind: str, timeout: float = 10.0, **match: Any) -> Msg:
        while True:
            raw = await self.ws.receive(timeout)
            assert raw.type == aiohttp.WSMsgType.TEXT, f"socket closed waiting for {kind}: {raw}"
            m = json.loads(raw.data)
            self.seen.append(m)
            if m["type"] == kind and all(m.get(k) == v for k, v in match.items()):
                return m

    async def send(self, **message: Any) -> None:
        await self.ws.send_json(message)

    def texts(self, who: str | None = None) -> list[str]:
        return [m["text"] for m in self.seen
                if m["type"] == "msg" and (who is None or m["from"] == who)]


async def customer(http: aiohttp.ClientSession, query: str = "") -> Peer:
    return Peer(await http.ws_connect(f"http://127.0.0.1:{PORT}/chat/ws{query}"))


async def test_page_is_framable_only_by_this_site_and_embed_origins(
        chat_server: Settings) -> None:
    async with aiohttp.ClientSession() as http:
        r = await http.get(f"http://127.0.0.1:{PORT}/chat")
        assert r.status == 200 and "在线客服" in await r.text()
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'self'" in csp and "script-src" not in csp
        assert "X-Frame-Options" not in r.headers  # the embed needs a frame
        js = await http.get(f"http://127.0.0.1:{PORT}/chat/embed.js")
        assert js.status == 200


async def test_self_service_balance_by_card_and_pin(chat_server: Settings) -> None:
    async with aiohttp.ClientSession() as http:
        c = await customer(http)
        hello = await c.until("hello")
        menu = await c.until("input")
        assert {"key": "1", "label": "加油卡业务"} in menu["buttons"]
        await c.send(type="key", key="1")
        line_menu = await c.until("input")
        assert any(b["key"] == "1" and "余额" in b["label"] for b in line_menu["buttons"])
        await c.send(type="key", key="1")
        card = await c.until("input")
        assert card["entry"] == "digits"
        await c.send(type="digits", digits=CARD["card_no"])
        pin = await c.until("input")
        assert pin["entry"] == "secret"
        await c.send(type="digits", digits=CARD["pin"])
        rate = await c.until("rate")
        assert any("余额" in t for t in c.texts("bot"))
        assert [o["score"] for o in rate["options"]] == [5, 4, 3, 2, 1]
        await c.until("ended", reason="completed")
        await c.send(type="rate", score=5)
        await c.until("rated")
        # the history a resumed page gets: the customer's entries masked, the PIN not at all
        again = await customer(http, f"?token={hello['token']}")
        await again.until("ended")
        mine = again.texts("me")
        assert CARD["pin"] not in json.dumps(again.seen) and CARD["card_no"] not in mine
        assert "••••••" in mine and any(t.endswith(CARD["card_no"][-4:]) for t in mine)
        await again.ws.close()
        await c.ws.close()
    engine = create_engine(chat_server.database.url.get_secret_value())  # type: ignore[union-attr]
    try:
        sessions = session_factory(engine)
        row = await _call(sessions, hello["chat"])
        assert row.transport == "chat" and row.outcome == "completed"
        # its figures for the analytics: two buttons and two typed numbers, in the balance bot
        assert (row.line, row.bot, row.key_turns, row.speech_turns) == ("oil", "fuel_balance",
                                                                         4, 0)
        assert row.states is not None and row.states["route"]["keys"] == 1
        path = json.dumps(row.path, ensure_ascii=False)
        assert CARD["pin"] not in path and CARD["card_no"] not in path
        assert await _rated(sessions, "fuel_balance", 5)
    finally:
        await engine.dispose()


async def test_handoff_to_an_agent_resume_and_rating(chat_server: Settings) -> None:
    async with aiohttp.ClientSession() as http:
        auth = await dev_desk_headers(http, chat_server, "agent1")
        base = f"http://127.0.0.1:{PORT}"
        agent = Peer(await http.ws_connect(f"{base}/agent/chat/ws", headers=auth))
        desktop = Peer(await http.ws_connect(f"{base}/agent/ws?agent=agent1", headers=auth))
        await agent.until("state")
        await agent.send(type="ready", on=True)
        c = await customer(http)
        hello = await c.until("hello")
        await c.until("input")
        await c.send(type="text", text="我要转人工")
        offer = await agent.until("offer")
        chat = offer["chat"]
        pop = await desktop.until("pop", event="offered")
        assert pop["pop"]["handoff_id"] == offer["handoff_id"]
        await agent.send(type="accept", chat=chat)
        history = await agent.until("history")
        assert any("转人工" in m["text"] for m in history["messages"] if m["from"] == "customer")
        await desktop.until("pop", event="connected")
        await c.until("agent_joined", agent="agent1")
        await c.send(type="text", text=f"我的卡号是{CARD['card_no']}，卡被锁了")
        got = await agent.until("msg", **{"from": "customer"})
        assert CARD["card_no"] not in got["text"] and CARD["card_no"][-4:] in got["text"]
        await c.send(type="typing", on=True)
        await agent.until("typing", chat=chat, on=True)
        await agent.send(type="typing", chat=chat, on=True)
        await c.until("typing", on=True)
        await agent.send(type="send", chat=chat, text="好的，我来帮您查一下。")
        seen = await c.until("msg", **{"from": "agent"})
        # the customer's page goes away; the agent writes; the page comes back and catches up
        await c.ws.close()
        await asyncio.sleep(0.2)
        await agent.send(type="send", chat=chat, text="已经为您解锁，请再试一下。")
        await agent.until("msg", **{"from": "agent"}, text="已经为您解锁，请再试一下。")
        back = await customer(http, f"?token={hello['token']}&after={seen['seq']}")
        resumed = await back.until("hello")
        assert resumed["resumed"] and resumed["chat"] == chat
        missed = await back.until("msg", **{"from": "agent"})
        assert missed["text"] == "已经为您解锁，请再试一下。"
        await agent.send(type="close", chat=chat)
        await agent.until("ended", chat=chat, reason="agent_closed")
        await back.until("rate")
        await back.until("ended", reason="agent_closed")
        await desktop.until("pop", event="ended")
        await back.send(type="rate", score=4)
        await back.until("rated")
        for peer in (agent, desktop, back):
            await peer.ws.close()
    engine = create_engine(chat_server.database.url.get_secret_value())  # type: ignore[union-attr]
    try:
        sessions = session_factory(engine)
        row = await _call(sessions, chat)
        assert row.outcome == "transferred" and row.queue == "hotline-general"
        assert row.reason == "caller_request" and row.speech_turns == 1
        for _ in range(50):  # the queue's result is written when the agent took it
            async with sessions() as s:
                waited = (await s.execute(select(Call.queue_result, Call.queue_wait_s)
                                          .where(Call.id == row.id))).one()
            if waited[0]:
                break
            await asyncio.sleep(0.1)
        assert waited[0] == "answered" and waited[1] is not None and waited[1] >= 0
        steps = [s["step"] for s in row.path]
        assert {"agent_joined", "customer_text", "agent_text", "chat_ended"} <= set(steps)
        assert CARD["card_no"] not in json.dumps(row.path, ensure_ascii=False)
        assert await _rated(sessions, None, 4, agent="agent1")
    finally:
        await engine.dispose()


async def test_limits_and_bad_input(chat_server: Settings) -> None:
    async with aiohttp.ClientSession() as http:
        c = await customer(http)
        await c.until("input")
        await c.send(type="text", text="长" * 501)
        assert (await c.until("error"))["code"] == "too_long"
        await c.ws.send_str("<script>alert(1)</script>")
        assert (await c.until("error"))["code"] == "bad_message"
        await c.send(type="key", key="x")
        assert (await c.until("error"))["code"] == "bad_message"
        for _ in range(12):  # a burst past the connection's 8
            await c.send(type="text", text="你好")
        assert (await c.until("error", code="too_fast"))["text"]
        await c.send(type="end")
        await c.until("ended", reason="customer")
        await c.ws.close()
        gone = await customer(http, "?token=no-such-chat")
        err = await gone.until("error")
        assert err["code"] == "expired"


async def _call(sessions: Any, chat_id: str) -> Call:
    for _ in range(50):  # the journal writes behind the chat
        async with sessions() as s:
            row = (await s.execute(select(Call).where(Call.channel_id == f"chat-{chat_id}"))
                   ).scalar_one_or_none()
        if row is not None and row.ended_at is not None and row.path:
            steps = {p["step"] for p in row.path}
            if row.outcome != "transferred" or "chat_ended" in steps:
                return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"no finished call row for chat {chat_id}")


async def _rated(sessions: Any, bot: str | None, score: int, agent: str | None = None) -> bool:
    for _ in range(50):
        async with sessions() as s:
            cid = (await s.execute(select(Campaign.id).where(Campaign.name == CHAT_CAMPAIGN))
                   ).scalar_one_or_none()
        if cid is not None:
            results = await campaign_results(sessions, cid)
            assert results is not None
            groups = results.by_agent if agent else results.by_bot
            key = agent or bot or ""
            if key in groups and groups[key].csat_distribution.get(score):
                return True
        await asyncio.sleep(0.1)
    return False
