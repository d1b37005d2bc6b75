"""The callback offer: the rules, and end to end through the real Asterisk with no agent logged
into the queue: the caller hears the offer, presses 1, and a callback task row appears; a
caller already waiting in the queue presses 1 and gets one too; agents work the tasks."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.callback import CallbackPolicy, QueueLoad, callback_policy
from handoff.ticket_store import TicketStore
from handoff.ticket_tables import CallbackTaskRow
from ivr.core.config import HandoffSettings, Settings
from ivr.core.storage.db import session_factory
from ivr.sim.demo import listen_until_quiet
from ivr.sim.desk import dev_desk_headers
from ivr.sim.sipua import SipPhone, SipUserAgent
from ivr.web.keys import CALLS, SESSIONS
from tests.conftest import ServerControl
from tests.e2e.test_call_flow import last_call, steps


def test_offer_rules(pg_engine: AsyncEngine) -> None:
    policy = CallbackPolicy(HandoffSettings(callback_wait_limit_s=300, callback_avg_handle_s=180),
                            TicketStore(session_factory(pg_engine)))
    assert policy.reason(QueueLoad("hotline-oil", 0, 0)) == "no_agent"
    assert policy.reason(QueueLoad("hotline-oil", 1, 0)) is None  # 180 s expected
    assert policy.reason(QueueLoad("hotline-oil", 1, 1)) == "wait_limit"  # 360 s
    assert policy.reason(QueueLoad("hotline-oil", 3, 3)) is None  # 240 s
    assert policy.reason(None) is None
    assert callback_policy(session_factory(pg_engine),
                           HandoffSettings(callback_offer=False)) is None


@pytest.mark.asterisk
@pytest.mark.slow
async def test_no_agent_caller_presses_1_and_a_callback_task_is_stored(
        server: ServerControl, caller: SipUserAgent, pg_engine: AsyncEngine) -> None:
    assert server.app is not None
    manager = server.app[CALLS]
    policy = callback_policy(server.app[SESSIONS], HandoffSettings(callback_offer=True))
    assert policy is not None
    manager.calls.callbacks = policy  # the test server runs without the offer (tests/conftest.py)
    try:
        since = time.time()
        call = await caller.call("956100")
        await call.wait_until_heard_seconds(1.0, 20)  # the greeting has begun: barge in
        await call.send_dtmf("2")  # the gas line
        await asyncio.sleep(2.0)  # into the gas menu: barge in again
        await call.send_dtmf("0")  # an agent, please: nobody is logged into hotline-gas
        _, voiced = await listen_until_quiet(call)  # the transfer notice and the offer
        assert voiced >= 2.0, "the caller must hear the callback offer"
        await call.send_dtmf("1")
        _, voiced_booked = await listen_until_quiet(call)
        assert voiced_booked >= 1.5, "the caller must hear the confirmation"
        await call.wait_hangup(10)  # the IVR ends the call after the confirmation
        assert call.ended_by_remote
    finally:
        manager.calls.callbacks = None
    row = await last_call(server, since)
    assert row.outcome == "callback" and row.queue is None
    (offer,) = steps(row, "callback_offer")
    assert offer["detail"]["reason"] == "no_agent" and offer["detail"]["queue"] == "hotline-gas"
    async with session_factory(pg_engine)() as s:
        task = (await s.execute(select(CallbackTaskRow).where(
            CallbackTaskRow.call_id == row.id))).scalar_one()
    assert (task.caller_number, task.line, task.queue, task.reason, task.status) == (
        "13800138000", "gas", "hotline-gas", "no_agent", "pending")
    assert task.handoff_id and policy.outcomes["booked"] == 1


@pytest.mark.asterisk
@pytest.mark.slow
async def test_a_caller_waiting_in_the_queue_presses_1_for_a_callback(
        server: ServerControl, caller: SipUserAgent, pg_engine: AsyncEngine) -> None:
    """Declines the offer before the queue, waits, then presses 1 in the queue: the dialplan's
    [ivr-queue-keys] brings the caller back to the IVR (ivr/calls/queue_exit.py), which books the
    task against the original call and its handoff, confirms and hangs up."""
    assert server.app is not None
    manager = server.app[CALLS]
    policy = callback_policy(server.app[SESSIONS], HandoffSettings(callback_offer=True))
    assert policy is not None
    manager.calls.callbacks = policy
    try:
        since = time.time()
        call = await caller.call("956100")
        await call.wait_until_heard_seconds(1.0, 20)
        await call.send_dtmf("2")  # the gas line
        await asyncio.sleep(2.0)
        await call.send_dtmf("0")  # an agent: nobody is logged into hotline-gas
        await listen_until_quiet(call)  # the transfer notice and the offer
        await call.send_dtmf("2")  # no thanks, I will wait
        row = await last_call(server, since)  # the IVR's part ends as the call queues
        assert row.outcome == "transferred" and row.queue == "hotline-gas"
        await asyncio.sleep(1.0)
        assert not call.ended, "the caller must be waiting in the queue"
        await call.send_dtmf("1")  # a callback after all
        _, voiced = await listen_until_quiet(call)
        assert voiced >= 1.5, "the caller must hear the confirmation"
        await call.wait_hangup(10)
        assert call.ended_by_remote
    finally:
        manager.calls.callbacks = None
    (transfer,) = steps(row, "transfer")
    async with session_factory(pg_engine)() as s:
        task = (await s.execute(select(CallbackTaskRow).where(
            CallbackTaskRow.handoff_id == transfer["detail"]["handoff"]))).scalar_one()
    assert (task.call_id, task.line, task.queue, task.reason, task.status) == (
        row.id, "gas", "hotline-gas", "queue_key", "pending")
    assert manager.queue_exits["booked"] == 1 and policy.outcomes["declined"] == 1


# -- working the tasks from the agent desktop ------------------------------------------------------


async def _post(http: Any, url: str, agent: str, settings: Settings,
                body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    auth = await dev_desk_headers(http, settings, agent)
    async with http.post(url, json=body, headers=auth) as r:
        return r.status, await r.json()


@pytest.mark.asterisk
@pytest.mark.slow
async def test_an_agent_claims_a_task_calls_the_customer_back_and_closes_it(
        server: ServerControl, settings: Settings, pg_engine: AsyncEngine) -> None:
    """Claim (one agent at a time), dial: the agent's own phone rings, and once answered
    Asterisk calls the customer showing 956100; then the task is closed with an outcome."""
    store = TicketStore(session_factory(pg_engine))
    number = "13912345678"
    task_id = await store.add_callback(call_id=uuid.uuid4(), handoff_id="h-desk", caller=number,
                                       line="oil", queue="hotline-oil", reason="wait_limit")
    a = settings.asterisk
    agent1 = SipPhone(server_host=a.bind_host, server_port=a.sip_port, username="agent1",
                      password=a.agent_password.get_secret_value())
    customer = SipPhone(server_host=a.bind_host, server_port=a.sip_port, username="customer",
                        password=a.caller_password.get_secret_value())
    base = f"http://{settings.web.host}:{settings.web.port}/agent/api/callbacks"
    async with aiohttp.ClientSession() as http:
        await agent1.start()
        await customer.start()
        try:
            assert await agent1.register(120) > 0 and await customer.register(120) > 0
            async with http.get(base) as r:
                assert r.status == 401
            async with http.get(base, headers=await dev_desk_headers(http, settings,
                                                                     "agent1")) as r:
                listed = [t for t in (await r.json())["tasks"] if t["id"] == task_id]
            assert listed and listed[0]["caller_number"] == number and listed[0]["agent"] is None

            assert (await _post(http, f"{base}/{task_id}/claim", "agent2", settings))[0] == 200
            status, body = await _post(http, f"{base}/{task_id}/dial", "agent1", settings)
            assert status == 409 and "agent2" in body["error"]  # another agent holds it
            status, _ = await _post(http, f"{base}/{task_id}/close", "agent2", settings,
                                    {"status": "cancelled", "note": "交给 agent1"})
            assert status == 200
            other = await store.add_callback(call_id=uuid.uuid4(), handoff_id=None,
                                             caller=number, line="oil", queue="hotline-oil",
                                             reason="no_agent")
            status, body = await _post(http, f"{base}/{other}/dial", "agent1", settings)
            assert status == 200, body
            assert body["task"]["agent"] == "agent1" and body["task"]["dials"] == 1
            ringing = await agent1.next_call(15)  # the agent's own phone first
            assert ringing.caller_number == number
            await ringing.answer()
            reached = await customer.next_call(15)  # then the customer, from the hotline
            assert reached.caller_number == "956100"
            await reached.answer()
            await asyncio.sleep(0.5)
            await reached.hangup()
            await ringing.wait_hangup(10)  # the agent's leg ends with the customer's

            status, body = await _post(http, f"{base}/{other}/close", "agent1", settings,
                                       {"status": "maybe"})
            assert status == 400 and "已回电" in body["error"]
            status, body = await _post(http, f"{base}/{other}/close", "agent1", settings,
                                       {"status": "done", "note": "已告知处理进度"})
            assert status == 200 and body["task"]["status"] == "done"
            status, body = await _post(http, f"{base}/{other}/claim", "agent1", settings)
            assert status == 409 and "已处理" in body["error"]
            assert (await _post(http, f"{base}/999999999/claim", "agent1", settings))[0] == 404
        finally:
            await agent1.close()
            await customer.close()
    async with session_factory(pg_engine)() as s:
        done = (await s.execute(select(CallbackTaskRow).where(
            CallbackTaskRow.id == other))).scalar_one()
    assert (done.status, done.agent, done.dials) == ("done", "agent1", 1)
    assert done.note == "已告知处理进度"
    assert done.closed_at is not None and done.last_dial_at is not None
