"""Web chat ratings as survey results: the same tables, reports and per-bot figures as calls.

The satisfaction question at the end of a chat (``ivr.calls.chat``) is one CSAT answer (1-5).
Each lands in one standing campaign, ``CHAT_CAMPAIGN`` (survey ``chat_csat``, never dialed: it
is created ``finished`` and its contacts ``completed``), as a contact per chat (``source``
``chat``, no phone: ``chat-`` and the chat's call id) with the bot and agent that served it and
the chat's call id as the call asked about. ``ivr campaigns report ID`` and the operations
page then show chat CSAT overall, per bot, per agent and per day like any survey.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, text

from campaigns.tables import Answer, Campaign, Contact
from ivr.core.storage.db import SessionFactory

CHAT_CAMPAIGN = "在线会话满意度"
CHAT_SURVEY = "chat_csat"
QUESTION = "chat_satisfaction"


class ChatCsat:
    """A ``ivr.calls.chathub.CsatSink`` on PostgreSQL."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self.campaign_id: int | None = None

    async def _campaign(self) -> int:
        if self.campaign_id is not None:
            return self.campaign_id
        async with self.sessions() as s, s.begin():
            # two servers rating their first chats at once create one campaign, not two
            await s.execute(text("SELECT pg_advisory_xact_lock(hashtext('chat_csat'))"))
            found = (await s.execute(
                select(Campaign.id).where(Campaign.name == CHAT_CAMPAIGN,
                                          Campaign.survey == CHAT_SURVEY)
                .order_by(Campaign.id).limit(1))).scalar_one_or_none()
            if found is None:
                campaign = Campaign(name=CHAT_CAMPAIGN, survey=CHAT_SURVEY, status="finished",
                                    business_line="general", max_channels=1)
                s.add(campaign)
                await s.flush()
                found = campaign.id
        self.campaign_id = int(found)
        return self.campaign_id

    async def record(self, *, call_id: uuid.UUID, score: int, bot: str, agent: str,
                     line: str) -> None:
        if not 1 <= score <= 5:
            raise ValueError(f"a chat rating is 1-5, not {score}")
        campaign_id = await self._campaign()
        async with self.sessions() as s, s.begin():
            contact = Contact(campaign_id=campaign_id, phone=f"chat-{call_id.hex[:24]}",
                              status="completed", source="chat", orig_call_id=call_id,
                              bot=bot or None, agent=agent or None,
                              fields={"line": line} if line else {})
            s.add(contact)
            await s.flush()
            s.add(Answer(campaign_id=campaign_id, contact_id=contact.id, call_id=call_id,
                         question=QUESTION, kind="csat", score=score, via="chat"))
