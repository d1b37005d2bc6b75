"""Campaign report, follow-up work orders and inbound call-backs on the real test PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from campaigns import opsapi
from campaigns.callbacks import CallbackFeeder
from campaigns.followup import FollowupPolicy, follow_up_contact
from campaigns.report import campaign_results, csv_text, render_text
from campaigns.tables import Attempt, Contact, DoNotCall
from dialog.backends.demo import demo_backends
from dialog.backends.tables import WorkOrderRow
from ivr.core.config import CallbackRule, OpsSettings
from ivr.core.storage.calls import CallRepository
from ivr.core.storage.db import session_factory
from tests.ops_data import add_survey_results

pytestmark = pytest.mark.asyncio(loop_scope="session")

CSV = ("phone,姓名,户号\n+86 138-0013-8001,张三,A1\n13800138001,重复,A2\n12345,坏号,A3\n"
       "010-62221234,李四,A4\n13800138009,王五,A5\n13800138010,免打扰,A6\n")


async def _campaign(pg_engine: AsyncEngine, name: str) -> int:
    sessions = session_factory(pg_engine)
    async with sessions() as s, s.begin():
        await s.execute(insert(DoNotCall).values(phone="13800138010", reason="global")
                        .on_conflict_do_nothing())
    created = await opsapi.create_from_csv(sessions, name=name, survey="csat_default",
                                           line="gas", csv_text=CSV)
    assert (created.loaded, created.skipped) == (3, 2)  # duplicate and DNC skipped
    assert [e["line"] for e in created.errors] == [4]
    assert "号码格式不正确" in created.errors[0]["error"]
    return created.campaign_id


async def test_report_progress_results_csv(pg_engine: AsyncEngine) -> None:
    sessions = session_factory(pg_engine)
    cid = await _campaign(pg_engine, "report-test")
    contact_ids = await add_survey_results(sessions, cid)
    async with sessions() as s, s.begin():
        third = (await s.execute(select(Contact).where(
            Contact.campaign_id == cid, Contact.id.not_in(contact_ids)))).scalar_one()
        now = datetime.now(UTC)
        s.add(Attempt(campaign_id=cid, contact_id=third.id, outcome="busy", started_at=now))
        s.add(Attempt(campaign_id=cid, contact_id=third.id, outcome="machine",
                      started_at=now + timedelta(seconds=5)))
        s.add(DoNotCall(phone="13800138077", campaign_id=cid, source_campaign_id=cid))
    res = await campaign_results(sessions, cid)
    assert res is not None
    p = res.campaign.progress
    assert (p.contacts, p.dialed, p.attempts, p.answered, p.completed) == (3, 3, 4, 2, 2)
    assert (p.machine, p.busy, p.no_answer, p.dnc_added, p.pending) == (1, 0, 0, 1, 1)
    assert res.overall.csat_distribution == {1: 0, 2: 1, 3: 0, 4: 0, 5: 1}
    assert res.overall.csat_mean == 3.5 and res.overall.nps == 0.0
    assert set(res.by_bot) == {"gas_bill"} and set(res.by_agent) == {"agent1"}
    assert set(res.by_line) == {"gas"} and len(res.by_day) == 1
    text = render_text(res)
    assert "CSAT 均分 3.50" in text and "希望能直接转人工" in text
    masked = await csv_text(sessions, cid, unmasked=False)
    assert masked is not None and "13800138001" not in masked and "138****8001" in masked
    assert len(masked.strip().splitlines()) == 6  # header + 5 answers
    full = await csv_text(sessions, cid, unmasked=True)
    assert full is not None and "13800138001" in full
    assert await campaign_results(sessions, 987654) is None


async def test_followup_work_order(pg_engine: AsyncEngine) -> None:
    sessions = session_factory(pg_engine)
    cid = await _campaign(pg_engine, "followup-test")
    low, high = await add_survey_results(sessions, cid)
    orders = demo_backends(sessions).work_orders
    policy = FollowupPolicy.for_campaign(OpsSettings())
    assert await follow_up_contact(sessions, orders, cid, high, policy, final=True) is None
    order = await follow_up_contact(sessions, orders, cid, low, policy, final=False)
    assert order is not None and order.kind == "survey_followup" and order.line == "gas"
    again = await follow_up_contact(sessions, orders, cid, low, policy, final=True)
    assert again is not None and again.number == order.number  # one order per survey call
    async with sessions() as s:
        row = (await s.execute(select(WorkOrderRow).where(
            WorkOrderRow.number == order.number))).scalar_one()
    assert row.detail["comment"] == "希望能直接转人工"
    assert row.detail["bot"] == "gas_bill" and row.detail["agent"] == "agent1"
    assert row.detail["original_call_id"] and row.detail["assignee_role"] == "supervisor"
    assert row.phone == "13800138001"


async def test_callbacks_from_finished_calls(pg_engine: AsyncEngine) -> None:
    sessions = session_factory(pg_engine)
    cid = await _campaign(pg_engine, "callback-test")
    settings = OpsSettings(callbacks=[
        CallbackRule(campaign=str(cid), bot="gas_bill", delay_min=30),
        CallbackRule(campaign="no-such-campaign", queue="oil"),
    ])
    feeder = CallbackFeeder(sessions, settings, agent_lookup=_agents)
    repo = CallRepository(sessions)

    async def inbound(caller: str, bot: str | None, queue: str | None = None) -> uuid.UUID:
        call_id = await repo.start(channel_id=f"ch-{uuid.uuid4().hex[:6]}", transport="ari",
                                   caller_number=caller, dialed_number="956100")
        if bot:
            await repo.add_step(call_id, "bot", bot=bot, via="menu")
        await repo.finish(call_id, "completed", queue=queue)
        return call_id

    served = await inbound("13900001111", "gas_bill")
    results = [await feeder.handle(served),
               await feeder.handle(await inbound("13900002222", "oil_card")),
               await feeder.handle(await inbound("13800138010", "gas_bill")),  # global DNC
               await feeder.handle(served),
               await feeder.handle(await inbound("13900003333", None, queue="oil")),
               await feeder.handle(await inbound("anonymous", "gas_bill"))]
    assert results == ["added", "no_rule", "dnc", "duplicate", "no_campaign", "no_rule"]
    async with sessions() as s:
        contact = (await s.execute(select(Contact).where(
            Contact.campaign_id == cid, Contact.orig_call_id == served))).scalar_one()
        call = await repo.get(served)
    assert call is not None and call.ended_at is not None
    assert contact.bot == "gas_bill" and contact.agent == "agent2"
    assert contact.source == "callback" and contact.phone == "13900001111"
    assert abs((contact.next_at - call.ended_at).total_seconds() - 1800) < 1
    # fed from the call journal's finish hook, through the owned task and bounded queue
    from ivr.calls.journal import CallJournal
    journal = CallJournal(repo)
    journal.on_finish.append(feeder.offer)
    journal.start_writer()
    feeder.start()
    call_id = uuid.uuid4()
    journal.start(call_id, channel_id="ch-j", caller="13900004444", dialed="956100",
                  transport="ari")
    journal.step(call_id, "bot", {"bot": "gas_bill"})
    journal.finish(call_id, "completed")
    await journal.close()
    await feeder.drain()
    await feeder.close()
    assert feeder.counts == {"added": 1}


async def _agents(channel_id: str) -> str | None:
    return "agent2"


async def test_real_inbound_call_gets_a_callback_contact(server: Any, caller: Any,
                                                        pg_engine: AsyncEngine) -> None:
    """A real call through Asterisk and the IVR (the caller hangs up during the greeting):
    when the journal closes the call, the server's call-back feeder puts the caller in the
    campaign with the original call id. (Matching by bot and queue: the tests above.)"""
    from ivr.web.keys import SETTINGS

    sessions = session_factory(pg_engine)
    cid = await _campaign(pg_engine, "callback-live")
    assert server.app is not None
    ops_settings = server.app[SETTINGS].ops
    ops_settings.callbacks = [CallbackRule(campaign=str(cid), delay_min=10)]
    try:
        call = await caller.call("956100")
        await call.wait_until_heard_seconds(1.0, timeout=15)
        await call.hangup()
        contact = None
        for _ in range(100):
            async with sessions() as s:
                contact = (await s.execute(select(Contact).where(
                    Contact.campaign_id == cid, Contact.source == "callback"))).scalar_one_or_none()
            if contact is not None:
                break
            await asyncio.sleep(0.1)
    finally:
        ops_settings.callbacks = []
    assert contact is not None and contact.orig_call_id is not None
    assert contact.phone == "13800138000"  # the test caller's number
    row = await CallRepository(sessions).get(contact.orig_call_id)
    assert row is not None and row.outcome == "caller_hangup" and row.ended_at is not None
    assert abs((contact.next_at - row.ended_at).total_seconds() - 600) < 1
