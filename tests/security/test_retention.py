"""Retention purge and ``ivr privacy forget`` on the real test PostgreSQL.

The database is shared by the whole test session, so every test here works on its own rows:
purges run at a fixed ``now`` in 2001 (only rows dated before 2001 are old enough; other tests'
rows are far newer), and forget uses numbers no other test uses.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from campaigns.tables import (
    Answer,
    Attempt,
    Campaign,
    ConsentEvent,
    Contact,
    DoNotCall,
    NumberFlag,
)
from dialog.backends.tables import WorkOrderRow
from handoff.ticket_tables import CallbackTaskRow, TicketRow
from ivr.app.forget import forget
from ivr.app.retention import purge, run_daily
from ivr.core.config import Settings, TTSSettings, load_settings
from ivr.core.storage.db import SessionFactory, session_factory
from ivr.core.storage.models import Call
from tts.cache import FIXED_MANIFEST, PromptCache, remember_fixed

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = datetime(2001, 6, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=500)
NEW = NOW - timedelta(hours=2)


def _settings(tmp_path: Path, **retention: Any) -> Settings:
    return load_settings(home=tmp_path, retention=retention)


def _mobile() -> str:
    return "139" + "".join(random.choice("0123456789") for _ in range(8))


def _uid() -> str:
    return uuid.uuid4().hex


async def _add(sessions: SessionFactory, *rows: Any) -> None:
    async with sessions() as session, session.begin():
        session.add_all(rows)


async def _campaign(sessions: SessionFactory) -> int:
    async with sessions() as session, session.begin():
        campaign = Campaign(name="保留期测试", survey="satisfaction")
        session.add(campaign)
        await session.flush()
        return campaign.id


def _ticket(at: datetime, *, contact: str = "", call_id: uuid.UUID | None = None,
            work_order_no: str | None = None) -> TicketRow:
    return TicketRow(ticket_no=_uid()[:20], handoff_id=_uid(), call_id=call_id, agent="agent1",
                     line="oil", type="complaint", problem="卡被锁了", contact=contact,
                     work_order_no=work_order_no, created_at=at, updated_at=at)


def _order(at: datetime, *, phone: str | None = None, number: str | None = None) -> WorkOrderRow:
    return WorkOrderRow(number=number or _uid()[:20], idem_key=_uid(), kind="complaint",
                        line="oil", subject="投诉", phone=phone, eta_hours=24, created_at=at)


def _callback(at: datetime, phone: str, call_id: uuid.UUID | None = None) -> CallbackTaskRow:
    return CallbackTaskRow(call_id=call_id or uuid.uuid4(), caller_number=phone, line="oil",
                           reason="no_agent", requested_at=at)


async def _exists(sessions: SessionFactory, table: Any, key: Any) -> bool:
    async with sessions() as session:
        return await session.get(table, key) is not None


# -- purge ---------------------------------------------------------------------------------------


async def test_purge_removes_old_rows_keeps_new_ones(pg_engine: AsyncEngine,
                                                     tmp_path: Path) -> None:
    sessions = session_factory(pg_engine)
    cid = await _campaign(sessions)
    old_call = Call(channel_id="ret-old", transport="ari", caller_number=_mobile(),
                    started_at=OLD, path=[{"t": 0, "step": "say", "detail": {"text": "余额"}}])
    new_call = Call(channel_id="ret-new", transport="ari", caller_number=_mobile(),
                    started_at=NEW)
    old_ticket, new_ticket = _ticket(OLD), _ticket(NEW)
    old_order, new_order = _order(OLD), _order(NEW)
    old_cb, new_cb = _callback(OLD, _mobile()), _callback(NEW, _mobile())
    done = Contact(campaign_id=cid, phone=_mobile(), name="张三", fields={"车牌": "沪A1"},
                   status="completed", created_at=OLD)
    waiting = Contact(campaign_id=cid, phone=_mobile(), name="李四", status="pending",
                      created_at=OLD)
    fresh = Contact(campaign_id=cid, phone=_mobile(), name="王五", status="completed",
                    created_at=NEW)
    await _add(sessions, old_call, new_call, old_ticket, new_ticket, old_order, new_order,
               old_cb, new_cb, done, waiting, fresh)
    old_answer = Answer(campaign_id=cid, contact_id=done.id, question="q1", kind="text",
                        score=2, text="客服态度差，我的卡号是6222", answered_at=OLD)
    new_answer = Answer(campaign_id=cid, contact_id=fresh.id, question="q1", kind="text",
                        score=5, text="很好", answered_at=NEW)
    await _add(sessions, old_answer, new_answer)

    settings = _settings(tmp_path, batch_size=1)  # batches of one: the loop must go on
    dry = await purge(sessions, settings, tmp_path / "prompts", NOW, dry_run=True)
    assert dry.counts["calls"] >= 1 and await _exists(sessions, Call, old_call.id)
    assert any("would be" in line for line in dry.lines())

    report = await purge(sessions, settings, tmp_path / "prompts", NOW)
    assert report.counts["calls"] == 1 and report.counts["tickets"] == 1
    assert report.counts["work_orders"] == 1 and report.counts["callback_tasks"] == 1
    assert report.counts["campaign_answers"] == 1 and report.counts["campaign_contacts"] == 1
    for table, gone, kept in ((Call, old_call, new_call), (TicketRow, old_ticket, new_ticket),
                              (WorkOrderRow, old_order, new_order),
                              (CallbackTaskRow, old_cb, new_cb)):
        assert not await _exists(sessions, table, gone.id)
        assert await _exists(sessions, table, kept.id)
    async with sessions() as session:
        a_old = await session.get(Answer, old_answer.id)
        a_new = await session.get(Answer, new_answer.id)
        c_done, c_wait, c_fresh = [await session.get(Contact, c.id)
                                   for c in (done, waiting, fresh)]
    assert a_old is not None and a_old.text is None and a_old.score == 2  # report still counts
    assert a_new is not None and a_new.text == "很好"
    assert c_done is not None and c_done.phone == f"anon-{done.id}" and c_done.name is None
    assert c_done.fields == {}
    assert c_wait is not None and c_wait.name == "李四"  # still being dialed: untouched
    assert c_fresh is not None and c_fresh.name == "王五"

    again = await purge(sessions, settings, tmp_path / "prompts", NOW)
    assert all(n == 0 for n in again.counts.values())


async def test_limit_zero_keeps_forever(pg_engine: AsyncEngine, tmp_path: Path) -> None:
    sessions = session_factory(pg_engine)
    ancient = Call(channel_id="ret-zero", transport="agi", caller_number=_mobile(),
                   started_at=datetime(1999, 1, 1, tzinfo=UTC))
    ticket = _ticket(datetime(1999, 1, 1, tzinfo=UTC))
    await _add(sessions, ancient, ticket)
    settings = _settings(tmp_path, calls_days=0, tickets_days=0, callbacks_days=0,
                         surveys_days=0, prompts_days=0)
    report = await purge(sessions, settings, tmp_path / "prompts", NOW)
    assert report.counts == {}
    assert "calls: kept forever (limit 0)" in report.lines()
    assert await _exists(sessions, Call, ancient.id)
    assert await _exists(sessions, TicketRow, ticket.id)


class _Synth:
    name, voice, speed = "fake", "v", 1.0

    async def synthesize(self, text: str) -> bytes:
        t = np.arange(4000) / 8000
        return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()

    async def close(self) -> None:
        pass


def _wav(path: Path, age_days: float) -> Path:
    path.write_bytes(b"RIFF" + bytes(200))
    stamp = (NOW - timedelta(days=age_days)).timestamp()
    os.utime(path, (stamp, stamp))
    return path


async def test_dynamic_prompts_removed_fixed_ones_kept(pg_engine: AsyncEngine,
                                                       tmp_path: Path) -> None:
    sessions = session_factory(pg_engine)
    cache_dir = tmp_path / "prompts"
    cache = PromptCache(_Synth(), TTSSettings(cache_dir=cache_dir))  # type: ignore[arg-type]
    done = await cache.prerender(["您好，欢迎致电956100。"])
    fixed = done["您好，欢迎致电956100。"]
    assert fixed.stem in (cache_dir / FIXED_MANIFEST).read_text()
    os.utime(fixed, (OLD.timestamp(), OLD.timestamp()))
    balance = await cache.get("您的余额为1280.50元。")  # rendered on demand for one call
    os.utime(balance, (OLD.timestamp(), OLD.timestamp()))
    recent = _wav(cache_dir / ("a" * 40 + ".wav"), 0.1)
    recording = _wav(cache_dir / "rec-greeting-0123456789ab.wav", 30)
    published = _wav(cache_dir / "queue-callback-announce.wav", 30)

    settings = _settings(tmp_path)
    report = await purge(sessions, settings, cache_dir, NOW)
    assert report.counts["prompt files"] == 1
    assert not balance.exists()
    assert fixed.exists() and recent.exists() and recording.exists() and published.exists()


async def test_no_manifest_no_prompt_removed(pg_engine: AsyncEngine, tmp_path: Path) -> None:
    cache_dir = tmp_path / "prompts"
    cache_dir.mkdir()
    old = _wav(cache_dir / ("b" * 40 + ".wav"), 30)
    report = await purge(session_factory(pg_engine), _settings(tmp_path), cache_dir, NOW)
    assert old.exists() and "prompt files" not in report.counts
    assert any("no fixed-prompt manifest" in line for line in report.lines())
    remember_fixed(cache_dir, [])
    report = await purge(session_factory(pg_engine), _settings(tmp_path), cache_dir, NOW)
    assert report.counts["prompt files"] == 1 and not old.exists()


async def test_daily_loop_survives_failures(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    tries: list[int] = []
    third = asyncio.Event()

    def broken() -> Any:
        tries.append(1)
        if len(tries) >= 3:
            third.set()
        raise RuntimeError("database down")

    sessions = cast(SessionFactory, broken)
    with caplog.at_level(logging.ERROR, logger="ivr.app.retention"):
        task = asyncio.create_task(
            run_daily(sessions, _settings(tmp_path), tmp_path, first_s=0, interval_s=0.01))
        await asyncio.wait_for(third.wait(), 5)
        await asyncio.sleep(0)
        assert not task.done()  # a failure never ends the loop
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert "retention purge failed" in caplog.text


# -- forget --------------------------------------------------------------------------------------


async def _customer(sessions: SessionFactory, cid: int, phone: str, *,
                    raw: str) -> dict[str, Any]:
    """Rows of one customer, the number written in the form ``raw``."""
    inbound = Call(channel_id="fg-in", transport="ari", caller_number=raw, dialed_number="956100",
                   path=[{"t": 0.5, "step": "say", "detail": {"text": "您的余额为88元"}},
                         {"t": 3.0, "step": "dtmf", "detail": {"digits": "622212345678"}}])
    outbound = Call(channel_id="fg-out", transport="ari", direction="outbound",
                    caller_number="956100", dialed_number=phone)
    await _add(sessions, inbound, outbound)
    by_call = _ticket(NEW, call_id=inbound.id, work_order_no=_uid()[:20])
    rows: dict[str, Any] = {
        "calls": [inbound, outbound],
        "tickets": [_ticket(NEW, contact=f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"), by_call],
        "work_orders": [_order(NEW, phone="0086" + phone), _order(NEW,
                                                                  number=by_call.work_order_no)],
        "callback_tasks": [_callback(NEW, raw, inbound.id)],
        "contacts": [Contact(campaign_id=cid, phone=phone, name="客户", status="completed")],
        "dnc": [DoNotCall(phone=phone, reason="别再打了")],
        "ledger": [ConsentEvent(phone=phone, event="consent", channel="survey_call",
                                actor="customer", words="可以"),
                   ConsentEvent(phone=phone, event="dnc", channel="survey_call",
                                actor="customer", words="不要再打了")],
        "flags": [NumberFlag(phone=phone, reason="suspended")],
    }
    await _add(sessions, *(r for key in rows if key != "calls" for r in rows[key]))
    contact = rows["contacts"][0]
    await _add(sessions, Attempt(campaign_id=cid, contact_id=contact.id, outcome="answered"),
               Answer(campaign_id=cid, contact_id=contact.id, question="q1", kind="text",
                      score=1, text="太差了"))
    return rows


async def _count(sessions: SessionFactory, table: Any, *where: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table).where(*where))
                   or 0)


async def test_forget_removes_exactly_that_customer(pg_engine: AsyncEngine) -> None:
    sessions = session_factory(pg_engine)
    cid = await _campaign(sessions)
    mine, other = _mobile(), _mobile()
    a = await _customer(sessions, cid, mine, raw="+86" + mine)
    b = await _customer(sessions, cid, other, raw=other)

    report = await forget(sessions, f"+86 {mine[:3]} {mine[3:7]} {mine[7:]}")
    assert report.counts == {"calls": 2, "tickets": 2, "work_orders": 2, "callback_tasks": 1,
                             "campaign_answers": 1, "campaign_contacts": 1, "number_flags": 1,
                             "consent_events": 1}
    assert report.kept_dnc == 1 and report.kept_refusals == 1  # the do-not-call request
    text = "\n".join(report.lines())
    assert mine not in text and f"{mine[:3]}****{mine[-4:]}" in text

    async with sessions() as session:
        inbound = await session.get(Call, a["calls"][0].id)
        outbound = await session.get(Call, a["calls"][1].id)
    assert inbound is not None and inbound.caller_number is None
    assert inbound.dialed_number == "956100"
    assert inbound.path == [{"t": 0.5, "step": "say"}, {"t": 3.0, "step": "dtmf"}]
    assert outbound is not None and outbound.dialed_number is None
    for key, table in (("tickets", TicketRow), ("work_orders", WorkOrderRow),
                       ("callback_tasks", CallbackTaskRow), ("contacts", Contact)):
        for row in a[key]:
            assert not await _exists(sessions, table, row.id), key
        for row in b[key]:
            assert await _exists(sessions, table, row.id), key
    assert await _count(sessions, Answer, Answer.contact_id == b["contacts"][0].id) == 1
    assert await _count(sessions, DoNotCall, DoNotCall.phone == mine) == 1  # kept
    assert await _count(sessions, ConsentEvent, ConsentEvent.phone == other) == 2
    assert await _count(sessions, NumberFlag, NumberFlag.phone == other) == 1
    async with sessions() as session:
        kept = await session.get(Call, b["calls"][0].id)
    assert kept is not None and kept.caller_number == other and kept.path[0]["detail"]

    second = await forget(sessions, mine)
    assert all(n == 0 for n in second.counts.values()) and second.kept_dnc == 1


async def test_cli_forget_masks_the_phone(pg_url: str, pg_engine: AsyncEngine,
                                          tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ivr.tools.cli import main

    sessions = session_factory(pg_engine)
    phone = _mobile()
    await _add(sessions, Call(channel_id="fg-cli", transport="ari", caller_number=phone),
               _callback(NEW, phone))
    env = {"DATABASE_URL": pg_url, "IVR_HOME": str(tmp_path)}

    def ivr(*args: str) -> str:
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    out = await asyncio.to_thread(ivr, "privacy", "forget", f"0086{phone}")
    assert phone not in out and f"{phone[:3]}****{phone[-4:]}" in out
    assert "calls: 1 emptied" in out and "callback_tasks: 1 deleted" in out
    assert "do_not_call: 0 kept" in out
    out = await asyncio.to_thread(ivr, "privacy", "forget", phone)
    assert "calls: 0" in out and "callback_tasks: 0 deleted" in out
    out = await asyncio.to_thread(ivr, "privacy", "purge", "--dry-run")
    assert "dry run: nothing changed" in out and "calls:" in out
    result = await asyncio.to_thread(CliRunner().invoke, main, ["privacy", "forget", "12ab"],
                                     env=env)
    assert result.exit_code == 2 and "号码含非数字字符" in result.output
