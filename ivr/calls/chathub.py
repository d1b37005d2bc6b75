"""The web chats of this server: opening, resuming, running and ending them.

What it decides:

- **Capacity**: at most ``chat.capacity`` chats at once; a browser beyond it is told ``busy``
  (and retries) rather than queued without bound.
- **Resume**: a chat is found again by its resume token (the browser keeps it for the tab's
  life); nothing else identifies a web customer, and nothing else is needed.
- **Running**: each chat's session is one task owned here (``ChatSession`` through the one call
  factory); when it ends, its outcome decides the chat's end: the bot finished (the
  satisfaction question, then ended), went to an agent (the desk has it now), or the customer
  left.
- **Endings and expiry** (one reaper task, every ``REAP_S``): a customer away past
  ``resume_s`` while queued or with an agent has left (the desk is told); a chat older than
  ``max_chat_s`` expires; an ended chat is forgotten ``KEEP_ENDED_S`` later (time to rate it).
- **Ratings**: one satisfaction answer per chat, handed to the ``CsatSink`` (the survey results,
  ``campaigns.chatcsat``) in a task owned here.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from ivr.calls.chat import ChatChannel, ChatQueue, ChatRoom
from ivr.calls.factory import CallFactory
from ivr.calls.session import Dialog
from ivr.core.config import ChatSettings

log = logging.getLogger("ivr.calls.chathub")

REAP_S = 2.0
KEEP_ENDED_S = 120.0  # an ended chat stays for its rating and a last reconnect
_ENDINGS = {"completed": "completed", "no_input": "no_input", "caller_hangup": "customer"}


class CsatSink(Protocol):
    async def record(self, *, call_id: uuid.UUID, score: int, bot: str, agent: str,
                     line: str) -> None: ...


class ChatHub:
    def __init__(self, factory: CallFactory, settings: ChatSettings, *,
                 dialog_factory: Callable[[], Dialog], desk: ChatQueue | None = None,
                 csat: CsatSink | None = None) -> None:
        self.factory = factory
        self.settings = settings
        self.dialog_factory = dialog_factory
        self.desk = desk
        self.csat = csat
        self._rooms: dict[str, ChatRoom] = {}  # resume token -> chat
        self._sessions: dict[str, asyncio.Task[None]] = {}  # chat id -> its session
        self._tasks: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self.opened = 0
        self.refused = 0
        self.endings: Counter[str] = Counter()
        self.ratings = 0

    @property
    def active(self) -> int:
        return sum(1 for r in self._rooms.values() if r.state != "ended")

    def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap(), name="chat-reaper")

    async def close(self) -> None:
        tasks = [*self._sessions.values(), *self._tasks]
        if self._reaper is not None:
            tasks.append(self._reaper)
        for room in self._rooms.values():
            room.finish("closing")  # first: a cancelled session must not queue its chat
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- opening and resuming -----------------------------------------------------------
    def open(self) -> ChatRoom | None:
        """A new chat with its session started; None when this server is full."""
        if self.active >= self.settings.capacity:
            self.refused += 1
            return None
        s = self.settings
        room = ChatRoom(resume_s=s.resume_s, max_message_chars=s.max_message_chars)
        room.on_rating = lambda score: self._rated(room, score)
        self._rooms[room.token] = room
        self.opened += 1
        channel = ChatChannel(room, no_input_s=s.no_input_s, queue=self.desk)
        task = asyncio.create_task(self._run(room, channel), name=f"chat-{room.chat_id[:8]}")
        self._sessions[room.chat_id] = task
        task.add_done_callback(lambda _t: self._sessions.pop(room.chat_id, None))
        return room

    def find(self, token: str) -> ChatRoom | None:
        return self._rooms.get(token) if token else None

    # ---- a chat's bot part ------------------------------------------------------------------
    async def _run(self, room: ChatRoom, channel: ChatChannel) -> None:
        dialog = self.dialog_factory()
        session = self.factory.chat_session(channel, dialog)
        room.call_id = session.call_id
        try:
            result = await session.run()
        finally:
            summary = getattr(dialog, "summary", None)
            if summary is not None:
                room.bot = str(summary().get("bot") or "")
        if result.outcome == "transferred" and room.state != "ended":
            room.line = room.line or "general"
            return  # the desk has it
        if result.outcome == "completed":
            room.ask_rating()
        room.finish(_ENDINGS.get(result.outcome, "error"))
        self.endings[room.end_reason] += 1

    # ---- ratings ------------------------------------------------------------------------
    def _rated(self, room: ChatRoom, score: int) -> None:
        self.ratings += 1
        if self.csat is None or room.call_id is None:
            return
        task = asyncio.create_task(self._record(room, score), name="chat-csat")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, room: ChatRoom, score: int) -> None:
        assert self.csat is not None and room.call_id is not None
        try:
            await self.csat.record(call_id=room.call_id, score=score, bot=room.bot,
                                   agent=room.agent, line=room.line)
        except Exception as exc:  # a lost rating is counted, never the customer's problem
            log.warning("chat rating of %s not stored: %s: %s", room.chat_id[:8],
                        type(exc).__name__, exc)

    # ---- expiry -------------------------------------------------------------------------
    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(REAP_S)
            self.reap()

    def reap(self) -> None:
        now = time.monotonic()
        for token, room in list(self._rooms.items()):
            if room.state == "ended":
                if room.ended_at is not None and now - room.ended_at > KEEP_ENDED_S:
                    del self._rooms[token]
                continue
            if now - room.created > self.settings.max_chat_s:
                self._end(room, "expired")
            elif room.state in ("queued", "agent") and room.absent_s() > room.resume_s:
                room.customer_ends("customer_left")
                self.endings["customer_left"] += 1

    def _end(self, room: ChatRoom, why: str) -> None:
        if room.queue is not None and room.state in ("queued", "agent"):
            room.queue.customer_gone(room, why)
        room.finish(why)  # first: a cancelled session must not queue its chat
        self.endings[why] += 1
        task = self._sessions.get(room.chat_id)
        if task is not None:
            task.cancel()

    def metrics_lines(self) -> list[str]:
        out = ["# TYPE ivr_chats_active gauge", f"ivr_chats_active {self.active}",
               "# TYPE ivr_chats_opened_total counter", f"ivr_chats_opened_total {self.opened}",
               "# TYPE ivr_chats_refused_total counter", f"ivr_chats_refused_total {self.refused}",
               "# TYPE ivr_chat_ratings_total counter", f"ivr_chat_ratings_total {self.ratings}",
               "# TYPE ivr_chat_endings_total counter"]
        out += [f'ivr_chat_endings_total{{reason="{k}"}} {v}'
                for k, v in sorted(self.endings.items())]
        return out
