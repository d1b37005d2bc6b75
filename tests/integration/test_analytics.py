"""Inbound analytics (``campaigns.inbound``) on a scratch PostgreSQL: exact figures over a few
known calls (China days and hours, lines, containment, reasons, states, hang-ups, queues,
confidence, CSAT per bot from a survey), filters, bad ranges, the CSV; and a seeded month of
10,000 calls whose totals add up (its timing is ``ivr bench analytics``'s, in the README)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from campaigns.inbound import BadRange, csv_rows, inbound_figures, parse_range
from campaigns.tables import Answer, Campaign, Contact
from dialog.catalog import Catalog
from ivr.core.storage.db import SessionFactory
from ivr.core.storage.models import Call
from ivr.tools.analyticsseed import CHINA, seed_month

DAY = date(2026, 11, 20)


@pytest.fixture
def sessions(scratch_sessions: SessionFactory) -> SessionFactory:
    return scratch_sessions


def _call(hour: int, **figures: Any) -> dict[str, Any]:
    start = datetime(DAY.year, DAY.month, DAY.day, hour, 30, tzinfo=CHINA)
    row = {"id": uuid.uuid4(), "channel_id": f"t-{uuid.uuid4().hex[:8]}", "transport": "ari",
           "direction": "inbound", "started_at": start, "path": [],
           "ended_at": start + timedelta(seconds=figures.pop("secs", 60))}
    return {**row, **figures}


async def test_figures_of_known_calls(sessions: SessionFactory) -> None:
    rows = [
        _call(9, outcome="completed", line="oil", bot="fuel_balance", speech_turns=2,
              key_turns=2, asr_confidence=0.95, states={"route": {"turns": 1},
                                                        "fuel_balance": {"turns": 3}}),
        _call(9, outcome="transferred", line="oil", bot="fuel_balance", queue="hotline-oil",
              reason="verification_failed", queue_result="answered", queue_wait_s=20.0,
              speech_turns=1, key_turns=3, asr_confidence=0.45, secs=120,
              states={"route": {"turns": 2, "no_match": 1}}),
        _call(23, outcome="caller_hangup", line="gas", exit_point="gas_balance.gas_account",
              key_turns=1, states={"route": {"turns": 1, "clarify": 1}}),
        _call(23, outcome="transferred", line="gas", queue="hotline-gas", reason="caller_request",
              queue_result="abandoned", queue_wait_s=80.0),
        # the day before the range (China time): not counted
        {**_call(0, outcome="completed", line="oil"),
         "started_at": datetime(2026, 11, 19, 23, 59, tzinfo=CHINA)},
    ]
    async with sessions() as s, s.begin():
        await s.execute(insert(Call), rows)
        campaign = Campaign(name="回访", survey="satisfaction")
        s.add(campaign)
        await s.flush()
        contact = Contact(campaign_id=campaign.id, phone="13800000000", bot="fuel_balance")
        s.add(contact)
        await s.flush()
        for score in (4, 5):
            s.add(Answer(campaign_id=campaign.id, contact_id=contact.id, question="csat",
                         kind="csat", score=score,
                         answered_at=datetime(2026, 11, 20, 12, tzinfo=CHINA)))
    f = await inbound_figures(sessions, DAY, DAY)
    t = f["totals"]
    assert (t["calls"], t["completed"], t["transferred"], t["caller_hangup"]) == (4, 1, 2, 1)
    assert t["containment"] == 0.25 and t["speech_share"] == round(3 / 9, 4)
    assert f["by_day"] == [{"day": "2026-11-20", "oil": 2, "gas": 2, "general": 0}]
    assert f["by_hour"][9]["oil"] == 2 and f["by_hour"][23]["gas"] == 2
    bal = next(b for b in f["bots"] if b["bot"] == "fuel_balance")
    assert (bal["calls"], bal["completed"], bal["containment"]) == (2, 1, 0.5)
    assert bal["avg_ivr_s"] == 90.0 and (bal["csat"], bal["csat_n"]) == (4.5, 2)
    assert {r["reason"]: r["calls"] for r in f["reasons"]} == {
        "verification_failed": 1, "caller_request": 1}
    route = next(s for s in f["states"] if s["state"] == "route")
    assert (route["turns"], route["no_match"], route["clarify"]) == (4, 1, 1)
    assert route["no_match_rate"] == 0.25
    assert f["hangups"] == [{"at": "gas_balance.gas_account", "calls": 1}]
    queues = {q["queue"]: q for q in f["queues"]}
    assert queues["hotline-gas"]["abandon_rate"] == 1.0
    assert queues["hotline-oil"]["avg_wait_s"] == 20.0
    assert [c["calls"] for c in f["confidence"]][4] == 1 and f["confidence"][9]["calls"] == 1
    gas = await inbound_figures(sessions, DAY, DAY, "gas")
    assert gas["totals"]["calls"] == 2 and not gas["bots"]
    table = csv_rows(f)
    assert ["section", "bots"] in table and table[1][0] == "calls"


async def test_a_call_without_states_counts_and_breaks_nothing(sessions: SessionFactory) -> None:
    """A call that ended before any dialog state (hung up in the greeting, a resumed call) is
    written with no states: SQL NULL now; rows from before hold a JSON null, which jsonb_each
    refuses (the bots list and the analytics page answered 500)."""
    from sqlalchemy import JSON, select

    older = _call(10, outcome="caller_hangup", line="gas", states=JSON.NULL)
    newer = _call(11, outcome="caller_hangup", line="gas", states=None)
    async with sessions() as s, s.begin():
        await s.execute(insert(Call), [older, newer])
    async with sessions() as s:
        kinds = (await s.execute(select(Call.states.is_(None)).where(
            Call.id.in_([older["id"], newer["id"]])).order_by(Call.started_at))).scalars().all()
    assert kinds == [False, True]  # a JSON null, then SQL NULL
    f = await inbound_figures(sessions, DAY, DAY)
    assert f["totals"]["calls"] == 2 and f["states"] == []


def test_bad_ranges_are_refused_in_chinese() -> None:
    with pytest.raises(BadRange, match="日期格式"):
        parse_range("2026-13-01", None, None)
    with pytest.raises(BadRange, match="晚于"):
        parse_range("2026-11-02", "2026-11-01", None)
    with pytest.raises(BadRange, match="366"):
        parse_range("2024-01-01", "2026-01-01", None)
    with pytest.raises(BadRange, match="业务线"):
        parse_range(None, None, "water")
    assert parse_range(None, None, None, today=DAY) == (DAY - timedelta(days=6), DAY, "")


async def test_a_seeded_month_adds_up(sessions: SessionFactory) -> None:
    end = date(2026, 12, 1)
    n = await seed_month(sessions, Catalog.load(), calls=10_000, days=30, end=end)
    f = await inbound_figures(sessions, end - timedelta(days=30), end - timedelta(days=1))
    t = f["totals"]
    assert n == t["calls"] == 10_000 and len(f["by_day"]) == 30
    assert sum(d["oil"] + d["gas"] + d["general"] for d in f["by_day"]) == 10_000
    assert sum(b["calls"] for b in f["bots"]) < 10_000 and len(f["bots"]) == 34
    assert t["completed"] + t["transferred"] + t["caller_hangup"] + t["other"] == 10_000
    assert sum(q["waits"] for q in f["queues"]) == t["transferred"]
