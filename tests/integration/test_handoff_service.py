"""The handoff service over a real Redis, the agent desktop's login and websocket over real
HTTP, and the LLM summary against a real local OpenAI-compatible HTTP server. AMI events are
fed in as ``QueueEvent``s (the end-to-end test gets them from Asterisk)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from handoff.service import HandoffService, agent_name
from handoff.store import channel_key, current_key, pop_key
from ivr.core.config import HandoffSettings, LLMSettings, Settings
from ivr.core.handoff import HandoffContext, TraceEntry
from ivr.core.storage.redis_server import connect_redis
from ivr.sim.desk import desk_headers
from ivr.telephony.ami import QueueEvent
from ivr.web import agent as agent_web
from ivr.web.keys import HANDOFF, SETTINGS
from tests.fake_llm import GOOD, FakeLLM

CARD = "9001010000012345678"


def context(channel_id: str | None = None) -> HandoffContext:
    trace = [
        TraceEntry(0.5, "say", {"prompt": "greeting", "text": "您好，欢迎致电客户服务热线。"}),
        TraceEntry(6.1, "dtmf", {"digits": "1"}),
        TraceEntry(6.1, "menu", {"key": "1", "choice": "oil"}),
        TraceEntry(9.0, "dtmf", {"digits": "<20 digits>"}),
        TraceEntry(12.3, "dtmf", {"digits": "0"}),
        TraceEntry(12.3, "menu", {"key": "0", "choice": "agent"}),
        TraceEntry(12.4, "say", {"prompt": "transfer", "text": "正在为您转接人工服务，请稍候。"}),
        TraceEntry(14.0, "transfer", {"line": "oil", "reason": "caller_request", "handoff": "x"}),
    ]
    return HandoffContext(
        handoff_id=uuid.uuid4().hex, call_id=uuid.uuid4(),
        channel_id=channel_id or f"{time.time():.0f}.{uuid.uuid4().int % 10000}",
        caller="13800138000", dialed="956100", line="oil", reason="caller_request",
        started_at=time.time() - 14, trace=trace,
        dialog={"line": "oil", "bot": None, "identity": "none", "verified": False,
                "identity_tail": "", "slots": {"card_number": "*" * 15 + CARD[-4:]}},
    )


def queue_event(kind: str, channel_id: str, agent: str = "agent1") -> QueueEvent:
    return QueueEvent(kind=kind, queue="hotline-oil", channel="PJSIP/caller-0001",
                      uniqueid=channel_id, member=f"PJSIP/{agent}",
                      received_at=time.monotonic())


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = await connect_redis(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLM]:
    llm = await FakeLLM().start()
    yield llm
    await llm.close()


async def service_for(redis: aioredis.Redis, llm: LLMSettings | None = None) -> HandoffService:
    service = HandoffService(redis, HandoffSettings(), llm or LLMSettings())
    await service.start()
    return service


class Desk:
    """The agent desktop's HTTP side on a real port."""

    def __init__(self, service: HandoffService) -> None:
        app = web.Application()
        self.settings = Settings()
        app[SETTINGS] = self.settings
        app[HANDOFF] = service
        agent_web.setup(app)
        self.server = TestServer(app)

    def password(self, agent: str) -> str:
        return self.settings.handoff.agent_passwords[agent].get_secret_value()

    async def auth(self, agent: str) -> dict[str, str]:
        """A bearer header of a new session (``POST /api/session``)."""
        async with aiohttp.ClientSession() as http:
            return await desk_headers(http, self.url("").rstrip("/"), agent, self.password(agent))

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest.fixture
async def desk(redis: aioredis.Redis) -> AsyncIterator[tuple[HandoffService, Desk]]:
    for agent in ("agent1", "agent2", "agent3"):  # the Redis is shared with other tests
        await redis.delete(current_key(agent))
    service = await service_for(redis)
    d = Desk(service)
    await d.server.start_server()
    yield service, d
    await d.server.close()
    await service.close()


async def receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = 2.0) -> dict[str, Any]:
    msg = await ws.receive(timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    data: dict[str, Any] = json.loads(msg.data)
    return data


def test_agent_name_from_member_interface() -> None:
    assert agent_name("PJSIP/agent1") == "agent1"
    assert agent_name("PJSIP/agent2@10.0.0.1") == "agent2"
    assert agent_name("agent3") == "agent3"
    assert agent_name("PJSIP/bad name") is None


async def test_pop_reaches_the_ringing_agent_and_a_reconnecting_desktop(
    desk: tuple[HandoffService, Desk], redis: aioredis.Redis,
) -> None:
    service, d = desk
    ctx = context()
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(d.url("/agent/ws?agent=agent1"), headers=await d.auth("agent1"))
        assert (await receive(ws)) == {"type": "hello", "agent": "agent1"}
        t = time.perf_counter()
        await service.handoff(ctx)
        handoff_s = time.perf_counter() - t
        assert handoff_s < 0.05  # no Redis, no model on the caller's path
        sent = time.monotonic()
        await service.on_queue_event(queue_event("AgentCalled", ctx.channel_id))
        msg = await receive(ws)
        delay = time.monotonic() - sent
        assert (msg["type"], msg["event"], msg["agent"]) == ("pop", "offered", "agent1")
        pop = msg["pop"]
        assert pop["handoff_id"] == ctx.handoff_id and pop["state"] == "ringing"
        assert pop["caller"] == "138****8000" and pop["line"] == "oil"  # masked in Redis
        assert pop["offered_to"] == ["agent1"] and pop["llm_status"] == "disabled"
        assert "origin" not in msg and delay < 0.1
        await asyncio.sleep(0.1)  # the writer task stores it
        assert await redis.get(current_key("agent1")) == ctx.handoff_id
        assert await redis.get(channel_key(ctx.channel_id)) == ctx.handoff_id
        stored = json.loads(str(await redis.get(pop_key(ctx.handoff_id))))
        assert stored["offered_to"] == ["agent1"] and CARD not in json.dumps(stored)
        assert 0 < await redis.ttl(pop_key(ctx.handoff_id)) <= 86400

        # a desktop that connects late (or reconnects) gets the current pop at once
        late = await http.ws_connect(d.url("/agent/ws?agent=agent1"),
                                     headers=await d.auth("agent1"))
        await receive(late)
        current = await receive(late)
        assert (current["event"], current["pop"]["handoff_id"]) == ("current", ctx.handoff_id)

        await service.on_queue_event(queue_event("AgentConnect", ctx.channel_id))
        for sock in (ws, late):
            connected = await receive(sock)
            assert connected["event"] == "connected" and connected["pop"]["agent"] == "agent1"
        await ws.close()
        await late.close()
    lines = "\n".join(service.metrics_lines())
    assert "ivr_handoff_pop_delivery_seconds_count 1" in lines
    assert "ivr_handoff_pop_publish_seconds_count 1" in lines
    assert "ivr_handoff_pops_assigned_total 1" in lines


async def test_ringall_withdraws_the_pop_from_the_agents_who_did_not_answer(
    desk: tuple[HandoffService, Desk],
) -> None:
    service, _ = desk
    ctx = context()
    await service.handoff(ctx)
    q2, q3 = service.subscribe("agent2"), service.subscribe("agent3")
    for agent in ("agent2", "agent3"):
        await service.on_queue_event(queue_event("AgentCalled", ctx.channel_id, agent))
    await service.on_queue_event(queue_event("AgentConnect", ctx.channel_id, "agent3"))
    assert [q2.get_nowait()["event"], q2.get_nowait()["type"]] == ["offered", "withdrawn"]
    assert [q3.get_nowait()["event"], q3.get_nowait()["event"]] == ["offered", "connected"]
    assert await service.current("agent2") is None
    current = await service.current("agent3")
    assert current is not None and current.agent == "agent3"


async def test_login_and_refusals(desk: tuple[HandoffService, Desk]) -> None:
    _, d = desk
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        for auth in ({"Authorization": "Bearer not-a-session"}, {}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(d.url("/agent/ws?agent=agent1"), headers=auth)
            assert refused.value.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError) as other:
            await http.ws_connect(d.url("/agent/ws?agent=agent2"), headers=await d.auth("agent1"))
        assert other.value.status == 403
        async with http.post(d.url("/agent/login"),
                             data={"agent": "agent1", "password": "wrong"}) as r:
            assert r.status == 401 and "工号或密码错误" in await r.text()
        async with http.get(d.url("/agent")) as r:
            assert r.status == 200 and "坐席登录" in await r.text()
        async with http.post(d.url("/agent/login"), allow_redirects=False,
                             data={"agent": "agent1", "password": d.password("agent1")}) as r:
            assert r.status == 303 and "ivr_session" in r.cookies
        async with http.get(d.url("/agent")) as r:  # the cookie now opens the desktop
            assert r.status == 200 and "坐席工作台" in await r.text() and "/agent/agent.js" in \
                await r.text()
        async with http.get(d.url("/agent/me")) as r:
            assert (await r.json()) == {"agent": "agent1", "role": "agent"}
        ws = await http.ws_connect(d.url("/agent/ws?agent=agent1"))  # cookie only
        assert (await receive(ws))["agent"] == "agent1"
        await ws.close()
        async with http.get(d.url("/agent/agent.js")) as r:
            assert r.status == 200 and "textContent" in await r.text()


@pytest.mark.parametrize(("mode", "delay_s", "status"), [
    ("ok", 0.2, "ok"), ("ok", 2.0, "timeout"), ("malformed", 0.0, "invalid"),
    ("http_error", 0.0, "error"),
])
async def test_llm_summary(redis: aioredis.Redis, fake_llm: FakeLLM, mode: str, delay_s: float,
                           status: str) -> None:
    fake_llm.mode, fake_llm.delay_s = mode, delay_s
    service = await service_for(redis, LLMSettings(base_url=fake_llm.base_url, model="test-model",
                                                   api_key=SecretStr("sk-test"), timeout_s=0.8))
    service.ticket_filler.enabled = False  # the LLM ticket draft: tests/integration/test_tickets.py
    try:
        ctx = context()
        desktop = service.subscribe("agent1")
        t = time.perf_counter()
        await service.handoff(ctx)
        assert time.perf_counter() - t < 0.05  # the model is never waited for
        await service.on_queue_event(queue_event("AgentCalled", ctx.channel_id))
        offered = desktop.get_nowait()
        assert offered["pop"]["llm_status"] == "pending"
        deterministic = offered["pop"]["summary"]
        await service.wait_summaries(5)
        pop = await service.current("agent1")
        assert pop is not None and pop.llm_status == status
        assert pop.summary == deterministic  # the deterministic summary always stays
        if status == "ok":
            assert pop.llm_summary is not None and pop.llm_summary["pending"] == GOOD["pending"]
            update = desktop.get_nowait()
            assert update["event"] == "summary" and update["pop"]["llm_summary"]["mood"] == "平稳。"
        else:
            assert pop.llm_summary is None
        (request,) = fake_llm.requests
        assert request["model"] == "test-model"
        sent = json.dumps(request, ensure_ascii=False)
        assert "13800138000" not in sent and CARD not in sent and "情况" in sent
        lines = "\n".join(service.metrics_lines())
        assert f'ivr_handoff_llm_summaries_total{{status="{status}"}} 1' in lines
    finally:
        await service.close()


async def test_two_processes_share_pops_through_redis(redis: aioredis.Redis) -> None:
    calls, web_side = await service_for(redis), await service_for(redis)
    try:
        await asyncio.sleep(0.2)  # both subscribed
        desktop = web_side.subscribe("agent2")
        ctx = context()
        await calls.handoff(ctx)
        await calls.on_queue_event(queue_event("AgentCalled", ctx.channel_id, "agent2"))
        msg = await asyncio.wait_for(desktop.get(), 2)
        assert msg["event"] == "offered" and msg["pop"]["handoff_id"] == ctx.handoff_id
        current = await web_side.current("agent2")
        assert current is not None and current.handoff_id == ctx.handoff_id
    finally:
        await calls.close()
        await web_side.close()


async def test_a_dead_redis_never_reaches_the_call() -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1", decode_responses=True,
                             socket_connect_timeout=0.2, socket_timeout=0.2)
    service = await service_for(dead)
    try:
        desktop = service.subscribe("agent1")
        ctx = context()
        t = time.perf_counter()
        await service.handoff(ctx)
        assert time.perf_counter() - t < 0.05
        await service.on_queue_event(queue_event("AgentCalled", ctx.channel_id))
        assert desktop.get_nowait()["event"] == "offered"  # this process still delivers
        await asyncio.sleep(0.6)
        assert service.metrics.redis_failures >= 1
        assert (await service.current("agent1")) is not None
    finally:
        await service.close()
        await dead.aclose()


async def test_a_bad_message_from_another_process_never_stops_the_listener(
        redis: aioredis.Redis) -> None:
    """On old main one malformed pop message on Redis ended the listener for good."""
    service = await service_for(redis)
    try:
        channel = "ivr:handoff:agent:agent9"
        await asyncio.sleep(0.3)  # the listener has subscribed
        for bad in ("[" * 5000, '{"type": "pop", "pop": {"bogus": 1}, "origin": "other"}'):
            await redis.publish(channel, bad)
        service._current["agent9"] = "h-blip"
        await redis.publish(channel, json.dumps(
            {"type": "withdrawn", "handoff_id": "h-blip", "origin": "other"}))
        for _ in range(50):  # the good message after them is still applied
            if service._current.get("agent9") == "":
                break
            await asyncio.sleep(0.05)
        assert service._current.get("agent9") == ""
        assert service.store.metrics.malformed_messages == 2
    finally:
        await service.close()


async def test_a_pop_made_while_redis_is_away_is_in_redis_when_it_is_back(
        redis: aioredis.Redis, redis_url: str) -> None:
    """Redis behind a fault proxy that goes down: the pop is made and delivered here at once,
    and written to Redis (with its channel index) once Redis answers again, without another
    write to trigger it (the subscriber coming back does)."""
    from ivr.sim.faults import FaultProxy, upstream_of_url, url_through

    proxy = FaultProxy("redis", upstream_of_url(redis_url, default_port=6379))
    port = await proxy.start()
    client = aioredis.from_url(url_through(redis_url, port), decode_responses=True,
                               socket_connect_timeout=0.3, socket_timeout=0.3)
    service = await service_for(client)
    try:
        await asyncio.sleep(0.3)  # subscribed
        await proxy.set("down")
        ctx = context()
        await service.handoff(ctx)
        await service.on_queue_event(queue_event("AgentCalled", ctx.channel_id))
        await asyncio.sleep(0.5)
        assert service.metrics.redis_failures >= 1
        assert await redis.get(pop_key(ctx.handoff_id)) is None
        await proxy.set("up")
        for _ in range(100):
            if await redis.get(pop_key(ctx.handoff_id)) is not None:
                break
            await asyncio.sleep(0.1)
        stored = json.loads(await redis.get(pop_key(ctx.handoff_id)) or "{}")
        assert stored.get("handoff_id") == ctx.handoff_id
        assert await redis.get(channel_key(ctx.channel_id)) == ctx.handoff_id
        assert await redis.get(current_key("agent1")) == ctx.handoff_id
    finally:
        await service.close()
        await client.aclose()
        await proxy.close()
