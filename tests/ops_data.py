"""Survey results written straight into the campaign tables, as the dialer and the survey runner
would write them: for tests of the report, the operations page and the follow-ups."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from campaigns.tables import Answer, Attempt, Contact
from ivr.core.storage.db import SessionFactory

# per contact (in id order): answers (question, kind, score, text)
ANSWERS: list[list[tuple[str, str, int | None, str | None]]] = [
    [("q_csat", "csat", 2, None), ("q_nps", "nps", 5, None),
     ("q_comment", "text", None, "希望能直接转人工")],
    [("q_csat", "csat", 5, None), ("q_nps", "nps", 10, None)],
]


async def add_survey_results(sessions: SessionFactory, campaign_id: int, *,
                             bot: str = "gas_bill", agent: str | None = "agent1",
                             at: datetime | None = None) -> list[int]:
    """Complete the first two contacts of the campaign: one answered attempt each and the
    answers of ``ANSWERS``. Returns the contact ids."""
    at = at or datetime.now(UTC)
    async with sessions() as s, s.begin():
        contacts = (await s.execute(
            select(Contact).where(Contact.campaign_id == campaign_id).order_by(Contact.id)
        )).scalars().all()[:len(ANSWERS)]
        for contact, answers in zip(contacts, ANSWERS, strict=False):
            call_id = uuid.uuid4()
            contact.status = "completed"
            contact.bot, contact.agent = bot, agent
            contact.orig_call_id = uuid.uuid4()
            s.add(Attempt(campaign_id=campaign_id, contact_id=contact.id, outcome="answered",
                          started_at=at - timedelta(seconds=60), answered_at=at,
                          ended_at=at + timedelta(seconds=50), call_id=call_id))
            for i, (question, kind, score, text) in enumerate(answers):
                s.add(Answer(contact_id=contact.id, campaign_id=campaign_id, call_id=call_id,
                             question=question, kind=kind, score=score, text=text,
                             answered_at=at + timedelta(seconds=10 * i)))
        return [c.id for c in contacts]
