"""Smart ticket filling: the schema, the LLM completion against a real local OpenAI-compatible
server (answers validated field by field, never trusted), the ticket API over real HTTP with
the real PostgreSQL (owner only, idempotent, a work order in the demo back end), and the rate
limit of the desktop login."""

from __future__ import annotations

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
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dialog.backends.tables import WorkOrderRow
from handoff.service import HandoffService
from handoff.store import current_key
from handoff.ticket_tables import TicketRow
from handoff.tickets import TicketForm, draft_from_pop, merge_llm_fields
from ivr.core.config import HandoffSettings, LLMSettings, Settings
from ivr.core.storage.db import session_factory
from ivr.core.storage.redis_server import connect_redis
from ivr.sim.desk import desk_headers
from ivr.web import agent as agent_web
from ivr.web import ops as ops_web
from ivr.web import tickets as tickets_web
from ivr.web.keys import HANDOFF, SESSIONS, SETTINGS
from tests.fake_llm import FakeLLM
from tests.integration.test_handoff_service import CARD, context, queue_event

session_loop = pytest.mark.asyncio(loop_scope="session")

LLM_TICKET = {
    "type": "card_loss",  # valid for the oil line
    "problem": "来电人的加油卡丢失，要求挂失。",
    "requested_action": "办理挂失并补卡",
    "priority": "super-urgent",  # invalid: dropped
    "contact": "13900000000",  # the model may not write the contact: ignored, counted
}


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = await connect_redis(redis_url)
    for agent in ("agent1", "agent2", "agent3"):  # the Redis is shared with other tests
        await client.delete(current_key(agent))
    yield client
    await client.aclose()


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLM]:
    llm = await FakeLLM().start()
    yield llm
    await llm.close()


def llm_settings(fake: FakeLLM, timeout_s: float = 2.0) -> LLMSettings:
    return LLMSettings(base_url=fake.base_url, model="test-model", api_key=SecretStr("sk-test"),
                       timeout_s=timeout_s)


def test_schema_and_merge_drop_invalid_fields() -> None:
    from handoff.pop import build_pop

    pop = build_pop(context())
    draft = draft_from_pop(pop)
    assert (draft.line, draft.type, draft.account_tail, draft.contact) == (
        "oil", "oil_inquiry", CARD[-4:], "138****8000")
    merged = merge_llm_fields(draft, '{"type": "gas_leak", "problem": "' + "长" * 600 + '", '
                              '"priority": "urgent", "requested_action": "回电 13912345678"}')
    assert merged is not None
    form, filled, dropped = merged
    assert sorted(dropped) == ["problem", "type"]  # gas type on the oil line; too long
    assert sorted(filled) == ["priority", "requested_action"]
    assert form.priority == "urgent" and "13912345678" not in form.requested_action
    assert form.type == "oil_inquiry" and form.problem == draft.problem
    assert merge_llm_fields(draft, "好的，工单如下") is None
    assert merge_llm_fields(draft, "[1, 2]") is None
    # a list or an object where a word belongs is dropped, not an error (was a TypeError)
    odd = merge_llm_fields(draft, '{"type": ["card_loss"], "problem": {"x": 1}, '
                                  '"priority": "urgent"}')
    assert odd is not None and sorted(odd[2]) == ["problem", "type"] and odd[1] == ["priority"]
    with pytest.raises(ValueError):
        TicketForm(line="oil", type="card_loss", problem="x", account_tail="12345")
    with pytest.raises(ValueError):
        TicketForm(line="general", type="oil_inquiry ", problem="x")


@session_loop
@pytest.mark.parametrize(("mode", "delay_s", "status"), [
    ("ok", 0.1, "ok"), ("ok", 1.5, "timeout"), ("malformed", 0.0, "invalid"),
    ("http_error", 0.0, "error"),
])
async def test_llm_ticket_in_the_background(redis: aioredis.Redis, fake_llm: FakeLLM, mode: str,
                                            delay_s: float, status: str) -> None:
    fake_llm.mode, fake_llm.delay_s, fake_llm.ticket_reply = mode, delay_s, LLM_TICKET
    service = HandoffService(redis, HandoffSettings(), llm_settings(fake_llm, 0.8))
    service.summarizer.enabled = False
    await service.start()
    try:
        ctx = context()
        desktop = service.subscribe("agent1")
        t = time.perf_counter()
        await service.handoff(ctx)
        assert time.perf_counter() - t < 0.05  # the model is never waited for
        await service.on_queue_event(queue_event("AgentCalled", ctx.channel_id))
        offered = desktop.get_nowait()
        assert offered["pop"]["ticket_status"] == "pending"
        draft = dict(offered["pop"]["ticket"])
        await service.wait_summaries(5)
        pop = await service.current("agent1")
        assert pop is not None and pop.ticket_status == status
        lines = "\n".join(service.metrics_lines())
        assert f'ivr_handoff_llm_tickets_total{{status="{status}"}} 1' in lines
        if status == "ok":
            update = desktop.get_nowait()
            assert update["event"] == "ticket"
            ticket = update["pop"]["ticket"]
            assert (ticket["type"], ticket["type_label"]) == ("card_loss", "挂失补卡")
            assert ticket["problem"] == LLM_TICKET["problem"]
            assert ticket["priority"] == "normal"  # the invalid priority was dropped
            assert ticket["contact"] == "138****8000"  # never from the model (masked like the pop)
            assert sorted(ticket["llm_dropped"]) == ["contact", "priority"]
            assert 'ivr_handoff_llm_ticket_fields_dropped_total{field="priority"} 1' in lines
        else:
            assert pop.ticket == draft  # the deterministic draft stays
        sent = str(fake_llm.requests[-1])
        assert "13800138000" not in sent and CARD not in sent and "工单" in sent
    finally:
        await service.close()


class TicketDesk:
    def __init__(self, service: HandoffService, engine: AsyncEngine) -> None:
        app = web.Application()
        self.settings = Settings()
        app[SETTINGS] = self.settings
        app[HANDOFF] = service
        app[SESSIONS] = session_factory(engine)
        agent_web.setup(app)
        tickets_web.setup(app)
        ops_web.setup(app)
        self.server = TestServer(app)

    async def auth(self, agent: str) -> dict[str, str]:
        pw = self.settings.handoff.agent_passwords[agent].get_secret_value()
        async with aiohttp.ClientSession() as http:
            return await desk_headers(http, self.url("").rstrip("/"), agent, pw)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest.fixture
async def desk(redis: aioredis.Redis, pg_engine: AsyncEngine) -> AsyncIterator[
        tuple[HandoffService, TicketDesk]]:
    service = HandoffService(redis, HandoffSettings(), LLMSettings())
    await service.start()
    d = TicketDesk(service, pg_engine)
    await d.server.start_server()
    yield service, d
    await d.server.close()
    await service.close()


@session_loop
async def test_ticket_submit_owner_only_and_idempotent(
        desk: tuple[HandoffService, TicketDesk], pg_engine: AsyncEngine) -> None:
    service, d = desk
    ctx = context()
    await service.handoff(ctx)
    await service.on_queue_event(queue_event("AgentCalled", ctx.channel_id))
    await service.on_queue_event(queue_event("AgentConnect", ctx.channel_id))
    hid = ctx.handoff_id
    form: dict[str, Any] = {"handoff_id": hid, "line": "oil", "type": "card_loss",
                            "account_tail": CARD[-4:], "problem": "加油卡丢失，要求挂失补卡",
                            "requested_action": "挂失并补卡", "contact": "13800138000",
                            "priority": "urgent"}
    async with aiohttp.ClientSession() as http:
        a1 = await d.auth("agent1")
        async with http.get(d.url(f"/agent/api/tickets/{hid}"), headers=a1) as r:
            assert r.status == 200
            body = await r.json()
            assert body["draft"]["account_tail"] == CARD[-4:] and body["ticket"] is None
        for method, url, body in (("GET", f"/agent/api/tickets/{hid}", None),
                                  ("POST", "/agent/api/tickets", form)):
            async with http.request(method, d.url(url), headers=await d.auth("agent2"),
                                    json=body) as r:
                assert r.status == 403, await r.text()
            async with http.request(method, d.url(url), json=body) as r:
                assert r.status == 401
        async with http.get(d.url(f"/agent/api/tickets/{uuid.uuid4().hex}"),
                            headers=a1) as r:
            assert r.status == 404
        bad = {**form, "type": "gas_leak", "contact": "call me"}
        async with http.post(d.url("/agent/api/tickets"), json=bad, headers=a1) as r:
            assert r.status == 400
            err = await r.json()
            assert "联系电话" in err["error"] and err["fields"] == ["contact"]
        async with http.post(d.url("/agent/api/tickets"), json=form,
                             headers=a1) as r:
            assert r.status == 201, await r.text()
            first = await r.json()
        ticket = first["ticket"]
        assert ticket["ticket_no"].startswith("TK") and ticket["work_order_no"].startswith("GD")
        assert ticket["call_id"] == ctx.call_id.hex and first["created"] is True
        again = {**form, "problem": "加油卡丢失，已核实身份，要求挂失补卡"}
        async with http.post(d.url("/agent/api/tickets"), json=again, headers=a1) as r:
            assert r.status == 200
            second = await r.json()
        assert second["created"] is False
        assert second["ticket"]["ticket_no"] == ticket["ticket_no"]
        assert second["ticket"]["work_order_no"] == ticket["work_order_no"]
    async with session_factory(pg_engine)() as s:
        rows = (await s.execute(select(TicketRow).where(TicketRow.handoff_id == hid))).scalars()
        (row,) = list(rows)
        assert row.call_id == ctx.call_id and row.agent == "agent1"
        assert row.problem == again["problem"] and row.priority == "urgent"
        orders = (await s.execute(select(WorkOrderRow).where(
            WorkOrderRow.idem_key == f"ticket:{hid}"))).scalars()
        assert [o.number for o in orders] == [ticket["work_order_no"]]


@session_loop
async def test_login_rate_limit(desk: tuple[HandoffService, TicketDesk]) -> None:
    _, d = desk
    good = d.settings.handoff.agent_passwords["agent3"].get_secret_value()
    async with aiohttp.ClientSession() as http:
        for _ in range(5):
            async with http.post(d.url("/agent/login"),
                                 data={"agent": "agent3", "password": "wrong"}) as r:
                assert r.status == 401
        async with http.post(d.url("/agent/login"), allow_redirects=False,
                             data={"agent": "agent3", "password": good}) as r:
            assert r.status == 429  # even the right password, until the window has passed
            assert "登录失败次数过多" in await r.text() and int(r.headers["Retry-After"]) > 0
        # another account from the same address is not locked (a floor shares one address)
        async with http.post(d.url("/agent/login"), allow_redirects=False,
                             data={"agent": "agent2", "password": "wrong"}) as r:
            assert r.status == 401
        # the ops page checks the same passwords: its form shares the limit
        async with http.post(d.url("/ops/login"), allow_redirects=False,
                             data={"agent": "agent3", "password": good}) as r:
            assert r.status == 429 and "登录失败次数过多" in await r.text()
            assert "/ops/login" in await r.text()  # the ops form, not the desk's
