"""Automatic survey call-backs after inbound calls.

Rules (``settings.ops.callbacks``, first match wins): calls that went through a bot and/or ended
in a queue get a contact in the rule's campaign, due ``delay_min`` after the call ended, for a
``sample_rate`` share of the matching calls. The contact carries the original call id, the bot
and the agent, so the survey can ask about the very bot or agent that served the caller.
Numbers on the do-not-call list (global or the campaign's) are skipped, so are outbound calls
(the surveys themselves), anonymous callers, and calls already called back (one contact per
original call and campaign).

Sampling is deterministic per call id (a hash), so a replayed call gives the same answer.

Fed from the call journal: ``CallJournal.on_finish`` hooks get each finished call id
(``CallbackFeeder.offer``, never blocking). The feeder's queue is bounded
(``settings.ops.callback_queue``): when full, the newest finished call is dropped and counted
(``dropped``) rather than slow the journal down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError

from campaigns.opsapi import normalise_phone
from campaigns.tables import Campaign, Contact, DoNotCall
from ivr.core.config import CallbackRule, OpsSettings
from ivr.core.storage.calls import CallRepository
from ivr.core.storage.db import SessionFactory
from ivr.core.storage.errors import StorageError

log = logging.getLogger("campaigns.callbacks")

_DB_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
AgentLookup = Callable[[str], Awaitable[str | None]]  # channel id -> agent who answered


class PopReader(Protocol):
    async def handoff_for_channel(self, channel_id: str) -> str | None: ...

    async def load_pop(self, handoff_id: str) -> dict[str, Any] | None: ...


def pop_agent_lookup(store: PopReader) -> AgentLookup:
    """The agent who answered a transferred call, from its screen pop (handoff's PopStore)."""
    async def lookup(channel_id: str) -> str | None:
        handoff_id = await store.handoff_for_channel(channel_id)
        pop = await store.load_pop(handoff_id) if handoff_id else None
        agent = pop.get("agent") if pop else None
        return str(agent) if agent else None
    return lookup


@dataclass(frozen=True, slots=True)
class FinishedCall:
    call_id: uuid.UUID
    caller: str | None
    direction: str
    outcome: str
    queue: str | None
    bot: str | None
    agent: str | None
    ended_at: datetime


def bot_of(path: Sequence[dict[str, Any]] | None) -> str | None:
    """The last bot a call went through (the dialog engine's ``bot`` steps)."""
    bot = None
    for step in path or ():
        if step.get("step") == "bot":
            detail = step.get("detail") or {}
            if isinstance(detail, dict) and detail.get("bot"):
                bot = str(detail["bot"])
    return bot


def sampled(call_id: uuid.UUID, rule: CallbackRule) -> bool:
    if rule.sample_rate >= 1.0:
        return True
    if rule.sample_rate <= 0.0:
        return False
    digest = hashlib.sha256(f"{call_id}:{rule.campaign}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rule.sample_rate


def matching_rule(call: FinishedCall, rules: Sequence[CallbackRule]) -> CallbackRule | None:
    """The first rule the call matches (before sampling), or None."""
    if call.direction != "inbound" or not call.caller or not any(ch.isdigit()
                                                                  for ch in call.caller):
        return None
    for rule in rules:
        if rule.bot and rule.bot != call.bot:
            continue
        if rule.queue and rule.queue != call.queue:
            continue
        return rule
    return None


ContactWriter = Callable[[FinishedCall, CallbackRule, datetime], Awaitable[str]]


class CallbackFeeder:
    """Turns finished inbound calls into call-back contacts; one owned task, bounded queue."""

    def __init__(self, sessions: SessionFactory, settings: OpsSettings, *,
                 agent_lookup: AgentLookup | None = None,
                 writer: ContactWriter | None = None) -> None:
        self.sessions = sessions
        self.repo = CallRepository(sessions)
        self.settings = settings  # rules read live: a changed rule list applies at once
        self.agent_lookup = agent_lookup
        self._writer = writer
        self._queue: asyncio.Queue[uuid.UUID] = asyncio.Queue(settings.callback_queue)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.counts: dict[str, int] = {}  # result -> calls (added, sampled_out, dnc, ...)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="campaign-callbacks")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def drain(self) -> None:
        """Wait until every offered call is handled (tests, shutdown)."""
        await self._queue.join()

    def offer(self, call_id: uuid.UUID) -> None:
        """The call journal's hook: never blocks; a full queue drops this call (counted)."""
        if not self.settings.callbacks:
            return
        try:
            self._queue.put_nowait(call_id)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _run(self) -> None:
        while True:
            call_id = await self._queue.get()
            try:
                result = await self.handle(call_id)
                self.counts[result] = self.counts.get(result, 0) + 1
            except StorageError as exc:
                self.counts["failed"] = self.counts.get("failed", 0) + 1
                log.error("call-back for call %s not created: %s", call_id, exc)
            finally:
                self._queue.task_done()

    async def load(self, call_id: uuid.UUID) -> FinishedCall | None:
        row = await self.repo.get(call_id)
        if row is None:
            return None
        agent = None
        if self.agent_lookup is not None and row.channel_id:
            agent = await self.agent_lookup(row.channel_id)
        return FinishedCall(call_id=row.id, caller=row.caller_number, direction=row.direction,
                            outcome=row.outcome, queue=row.queue, bot=bot_of(row.path),
                            agent=agent, ended_at=row.ended_at or row.started_at)

    async def handle(self, call_id: uuid.UUID) -> str:
        """One finished call: returns what happened (added, no_rule, sampled_out, dnc,
        duplicate, no_campaign, bad_number, not_found)."""
        call = await self.load(call_id)
        if call is None:
            return "not_found"
        rule = matching_rule(call, self.settings.callbacks)
        if rule is None:
            return "no_rule"
        if not sampled(call.call_id, rule):
            return "sampled_out"
        due = call.ended_at + timedelta(minutes=rule.delay_min)
        writer = self._writer or self._write_contact
        result = await writer(call, rule, due)
        if result == "added":
            log.info("call-back contact for call %s in campaign %s due %s", call.call_id,
                     rule.campaign, due.isoformat(timespec="seconds"))
        return result

    async def _write_contact(self, call: FinishedCall, rule: CallbackRule,
                             due: datetime) -> str:
        return await add_callback_contact(self.sessions, call, rule, due)


async def add_callback_contact(sessions: SessionFactory, call: FinishedCall, rule: CallbackRule,
                               due: datetime) -> str:
    """Insert the call-back contact: added, no_campaign, bad_number, dnc or duplicate."""
    try:
        phone = normalise_phone(call.caller or "")
    except ValueError:
        return "bad_number"
    try:
        async with sessions() as s, s.begin():
            key = rule.campaign.strip()
            cond = (Campaign.id == int(key)) if key.isdigit() else (Campaign.name == key)
            campaign = (await s.execute(
                select(Campaign).where(cond).order_by(Campaign.id.desc()).limit(1)
            )).scalar_one_or_none()
            if campaign is None or campaign.status in ("stopped", "finished"):
                return "no_campaign"
            dnc = (await s.execute(select(DoNotCall.id).where(
                DoNotCall.phone == phone,
                or_(DoNotCall.campaign_id.is_(None), DoNotCall.campaign_id == campaign.id),
            ).limit(1))).first()
            if dnc is not None:
                return "dnc"
            stmt = insert(Contact).values(
                campaign_id=campaign.id, phone=phone, source="callback", next_at=due,
                orig_call_id=call.call_id, bot=call.bot, agent=call.agent,
                fields={"queue": call.queue or "", "outcome": call.outcome},
            ).on_conflict_do_nothing().returning(Contact.id)
            made = (await s.execute(stmt)).first()
            return "added" if made is not None else "duplicate"
    except _DB_ERRORS as exc:
        raise StorageError(f"campaigns.callback(call {call.call_id}) failed: "
                           f"{type(exc).__name__}: {exc}") from exc
