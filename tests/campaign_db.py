"""What the real-call campaign tests set up and read back in the database (by the number's
last digit, the simulator's behaviour digit)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from campaigns.ariorigin import AriOriginator
from campaigns.dialer import Dialer
from campaigns.tables import Answer, Attempt, Campaign, Contact, DoNotCall, NumberFlag
from ivr.core.storage.db import SessionFactory
from ivr.core.storage.models import Call


async def fresh_numbers(sessions: SessionFactory, phones: list[str]) -> None:
    """Other tests' campaigns stop (they are not for this test's dialer) and these numbers
    leave the do-not-call list and the vacant/suspended flags (earlier runs put them there)."""
    async with sessions() as s, s.begin():
        await s.execute(update(Campaign).where(Campaign.status == "running")
                        .values(status="stopped"))
        for p in phones:
            for d in (await s.execute(select(DoNotCall).where(DoNotCall.phone == p))).scalars():
                await s.delete(d)
        await s.execute(delete(NumberFlag).where(NumberFlag.phone.in_(phones)))


async def run_until_finished(sessions: SessionFactory, originator: AriOriginator, cid: int,
                             *, timeout_s: float = 240, name: str = "test-dialer") -> None:
    """A dialer on ``originator`` until campaign ``cid`` is finished (TimeoutError after
    ``timeout_s``); the originator is closed after. 240 s: alone the campaigns take 30-60 s,
    but one CI run on the loaded 2-core machine ran past 150 s with nothing logged."""
    await originator.start()
    dialer = Dialer(sessions, originator, tick_s=0.3, name=name)
    task = asyncio.create_task(dialer.run())
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                async with sessions() as s:
                    status = await s.scalar(select(Campaign.status).where(Campaign.id == cid))
                if status == "finished":
                    return
                await asyncio.sleep(0.5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await originator.close()


@dataclass
class Results:
    attempts: dict[str, Attempt]
    contacts: dict[str, str]  # last digit -> contact status
    answers: dict[tuple[str, str], Answer]  # (last digit, question) -> answer
    dnc: set[str]  # numbers this campaign put on the do-not-call list


async def read_back(sessions: SessionFactory, cid: int) -> Results:
    async with sessions() as s:
        attempts = {p[-1]: a for p, a in (await s.execute(
            select(Contact.phone, Attempt).join(Attempt, Attempt.contact_id == Contact.id)
            .where(Contact.campaign_id == cid))).all()}
        contacts = {c.phone[-1]: c.status for c in (await s.execute(
            select(Contact).where(Contact.campaign_id == cid))).scalars()}
        answers = {(p[-1], a.question): a for p, a in (await s.execute(
            select(Contact.phone, Answer).join(Answer, Answer.contact_id == Contact.id)
            .where(Contact.campaign_id == cid))).all()}
        dnc = set((await s.execute(select(DoNotCall.phone).where(
            DoNotCall.source_campaign_id == cid))).scalars())
    return Results(attempts, contacts, answers, dnc)


async def steps_of(sessions: SessionFactory, attempt: Attempt) -> list[str]:
    """The step names of an answered call's path, in order."""
    async with sessions() as s:
        path = await s.scalar(select(Call.path).where(Call.channel_id == attempt.channel_id))
    return [p["step"] for p in path or []]


async def call_paths(sessions: SessionFactory, attempts: dict[str, Attempt]) -> str:
    """What the dialer heard and said on each answered call (shown when a check fails)."""
    keep = ("text", "prompt", "outcome", "by", "key", "turn_end")
    lines = []
    async with sessions() as s:
        for d, a in sorted(attempts.items()):
            path = await s.scalar(select(Call.path).where(Call.channel_id == a.channel_id))
            if path:
                lines.append(f"{d} " + repr([(p["t"], p["step"], {
                    k: v for k, v in p.get("detail", {}).items() if k in keep}) for p in path]))
    return "\n".join(lines)
