"""Survey answers written to ``campaign_answers`` as they are given (one transaction each), and
the do-not-call request from the call; the customer's consent, refusal and do-not-call request
also go to the consent ledger (``campaigns.ledger``) with the words heard. Free text (a spoken
comment's transcript) is stored masked (``ivr.core.privacy``): a card or phone number said in a
comment never reaches the table or the exports read from it."""

from __future__ import annotations

import uuid

from campaigns import ledger
from campaigns.repo import dnc_add
from campaigns.tables import Answer
from ivr.core.privacy import mask_digits_in_text
from ivr.core.storage.db import SessionFactory


class DbAnswerSink:
    def __init__(self, sessions: SessionFactory, *, campaign_id: int, contact_id: int,
                 call_id: uuid.UUID | None, phone: str) -> None:
        self.sessions = sessions
        self.campaign_id = campaign_id
        self.contact_id = contact_id
        self.call_id = call_id
        self.phone = phone

    async def answer(self, question: str, kind: str, score: int | None, text: str | None,
                     via: str) -> None:
        async with self.sessions() as s, s.begin():
            s.add(Answer(campaign_id=self.campaign_id, contact_id=self.contact_id,
                         call_id=self.call_id, question=question, kind=kind, score=score,
                         text=mask_digits_in_text(text) if text else text, via=via))

    async def consent(self, given: bool, words: str) -> None:
        await ledger.record(self.sessions, self.phone, "consent" if given else "refusal",
                            "survey_call", actor="customer", words=words,
                            campaign_id=self.campaign_id, call_id=self.call_id)

    async def do_not_call(self, words: str = "") -> None:
        await dnc_add(self.sessions, self.phone, reason="customer asked",
                      source_campaign_id=self.campaign_id)
        await ledger.record(self.sessions, self.phone, "dnc", "survey_call", actor="customer",
                            words=words or None, campaign_id=self.campaign_id,
                            call_id=self.call_id)
