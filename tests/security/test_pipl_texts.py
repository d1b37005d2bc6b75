"""What callers hear and what is kept of what they say (security issue, items 9 and 10).

Item 9: a survey comment is kept masked (on old main a card said in a comment was stored and
exported in clear). Item 10: 956100 is China National Petroleum's (中国石油) hotline: no prompt,
bot or survey text names 中国石化 (Sinopec), as the survey opening did."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from campaigns.answers import DbAnswerSink
from campaigns.tables import Answer, Campaign, Contact
from ivr.core.storage.db import create_engine, scratch_database, session_factory
from ivr.core.storage.migrate import upgrade
from tests.paths import REPO

SPOKEN_TEXT = ("dialog", "campaigns", "tts", "handoff", "ivr")


def test_no_text_names_the_wrong_company() -> None:
    wrong = []
    for top in SPOKEN_TEXT:
        for path in (REPO / top).rglob("*"):
            if path.suffix in (".yaml", ".yml", ".py", ".json", ".txt", ".md") and path.is_file():
                if "中国石化" in path.read_text(encoding="utf-8", errors="ignore"):
                    wrong.append(str(path.relative_to(REPO)))
    assert not wrong, f"中国石化 named in: {wrong}"


@pytest.mark.asyncio(loop_scope="session")
async def test_a_survey_comment_is_stored_masked(pg_url: str) -> None:
    async with scratch_database(pg_url, "answers") as url:
        await upgrade(url)
        engine = create_engine(url)
        try:
            sessions = session_factory(engine)
            async with sessions() as s, s.begin():
                campaign = Campaign(name="回访", survey="csat_default")
                s.add(campaign)
                await s.flush()
                contact = Contact(campaign_id=campaign.id, phone="13800138000")
                s.add(contact)
                await s.flush()
                ids = campaign.id, contact.id
            sink = DbAnswerSink(sessions, campaign_id=ids[0], contact_id=ids[1],
                                call_id=uuid.uuid4(), phone="13800138000")
            await sink.answer("comment", "text", None, "我的卡号是6222，0212，3456，7890，没到账",
                              "speech")
            async with sessions() as s:
                stored = (await s.scalars(select(Answer.text))).one()
        finally:
            await engine.dispose()
    assert stored is not None and "没到账" in stored
    assert "0212" not in stored and "3456" not in stored
