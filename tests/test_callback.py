"""The callback offer: the rules, and end to end through the real Asterisk with no agent logged
into the queue: the caller hears the offer, presses 1, and a callback task row appears."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.callback import CallbackPolicy, QueueLoad, callback_policy
from handoff.ticket_store import TicketStore
from handoff.ticket_tables import CallbackTaskRow
from ivr.appkeys import CALLS, SESSIONS
from ivr.config import HandoffSettings
from ivr.demo import listen_until_quiet
from ivr.sipua import SipUserAgent
from ivr.storage.db import session_factory
from tests.conftest import ServerControl
from tests.test_call_flow import last_call, steps


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
    manager.callbacks = policy  # the test server runs without the offer (tests/conftest.py)
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
        manager.callbacks = None
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
