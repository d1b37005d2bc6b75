"""The agent side of web chats: the chat queue, offering chats to agents, relaying the talk.

A chat the bot could not resolve joins its line's queue (the same queue names as calls,
``ivr.core.lines``) and waits for a **chat-enabled agent**: one whose desktop has 「接收在线会话」
on (``set_ready``) and a chat connection open. What it decides:

- **Order**: the priority line first, then first come, first served; a chat is offered to the
  ready agent without a chat who has been idle longest, one agent and one chat at a time (the
  desktop shows one pop). An offer not accepted within ``offer_timeout_s`` goes to another
  agent (that agent is passed over for this chat while others are free).
- **The screen pop**: the desk speaks app_queue's language to the handoff service
  (``AgentCalled`` on offer, ``AgentConnect`` on accept, ``AgentRingNoAnswer``, ``AgentComplete``,
  ``QueueCallerAbandon``), so a chat's pop, summary, knowledge suggestions and ticket work
  exactly as a call's; the customer's texts join the pop's transcript as a caller's live words
  do (and ask for suggestions again). Those events go through one bounded queue (``EVENTS``,
  oldest dropped and counted) to one task owned here: nothing the agent or customer does waits
  on them.
- **Waiting too long**: past ``queue_timeout_s`` the customer is told and the chat ends (the
  satisfaction question is not asked: nobody served them).
- **The talk**: the customer's texts reach the agent (digits masked), the agent's reach the
  customer; both go to the call's journal as path steps. The agent closes a chat; the customer
  then gets the satisfaction question.

Agents' connections are non-blocking senders (``Send``); one that falls behind is closed and
reconnects, getting the chat's state and history again (``connect``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dialog.prompts import P
from ivr.core.lines import QUEUES, queue_for
from ivr.core.privacy import mask_digits_in_text
from ivr.telephony.ami import QueueEvent

log = logging.getLogger("handoff.chatdesk")

EVENTS = 1024
TICK_S = 1.0
AGENT_TEXT_CHARS = 1000
Message = dict[str, Any]
Send = Callable[[Message], bool]


class ChatRoomView(Protocol):
    """What the desk uses of a chat (``ivr.calls.chat.ChatRoom``)."""

    chat_id: str
    channel_id: str
    call_id: uuid.UUID | None
    line: str
    handoff_id: str
    agent: str
    state: str
    seq: int

    def say(self, text: str, who: str = "bot", **extra: Any) -> None: ...
    def post(self, kind: str, *, keep: bool = True, **fields: Any) -> Message: ...
    def finish(self, reason: str) -> None: ...
    def ask_rating(self) -> None: ...
    def history_for_agent(self) -> list[Message]: ...


class PathLog(Protocol):
    def step(self, call_id: uuid.UUID, name: str, detail: dict[str, object]) -> None: ...


@dataclass(eq=False)
class Waiting:
    room: ChatRoomView
    since: float
    offered_to: str = ""
    offered_at: float = 0.0
    passed_over: set[str] = field(default_factory=set)


@dataclass(eq=False)
class DeskAgent:
    name: str
    ready: bool = False
    links: set[Send] = field(default_factory=set)
    chat: ChatRoomView | None = None
    offer: Waiting | None = None
    idle_since: float = field(default_factory=time.monotonic)


class ChatDesk:
    def __init__(self, events: Callable[[QueueEvent], Awaitable[None]] | None, *,
                 words: Callable[[str, str], Awaitable[None]] | None = None,
                 offer_timeout_s: float = 30.0, queue_timeout_s: float = 900.0,
                 journal: PathLog | None = None) -> None:
        self.events = events
        self.words = words  # the customer's texts into the pop (live assist: suggestions)
        self.offer_timeout_s = offer_timeout_s
        self.queue_timeout_s = queue_timeout_s
        self.journal = journal
        self._waiting: dict[str, Waiting] = {}  # chat id -> waiting (insertion order: FIFO)
        self._agents: dict[str, DeskAgent] = {}
        self._events: asyncio.Queue[QueueEvent | tuple[str, str]] = asyncio.Queue(EVENTS)
        self._tasks: list[asyncio.Task[None]] = []
        self.counts: Counter[str] = Counter()  # queued, offered, accepted, closed, ...

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._pump(), name="chatdesk-events"),
                       asyncio.create_task(self._tick(), name="chatdesk-tick")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    # ---- the customer's side (ivr.calls.chat.ChatQueue) ------------------------------------
    def enqueue(self, room: ChatRoomView, line: str, handoff_id: str) -> str:
        room.line = line if line in QUEUES else "general"
        room.handoff_id = handoff_id
        self._waiting[room.chat_id] = Waiting(room, time.monotonic())
        self.counts["queued"] += 1
        self._dispatch()
        if room.chat_id in self._waiting and not self._waiting[room.chat_id].offered_to:
            room.post("queued", keep=False, position=self._position(room.chat_id))
        return queue_for(room.line)

    def customer_text(self, room: ChatRoomView, text: str) -> None:
        masked = mask_digits_in_text(text)
        self._path(room, "customer_text", text=masked)
        agent = self._agents.get(room.agent)
        if room.state == "agent" and agent is not None:
            self._to_agent(agent, {"type": "msg", "chat": room.chat_id, "seq": room.seq,
                                   "from": "customer", "text": masked})
        if room.handoff_id and self.words is not None:
            self._queue((room.handoff_id, masked))

    def customer_typing(self, room: ChatRoomView, on: bool) -> None:
        agent = self._agents.get(room.agent)
        if room.state == "agent" and agent is not None:
            self._to_agent(agent, {"type": "typing", "chat": room.chat_id, "on": on})

    def customer_gone(self, room: ChatRoomView, why: str) -> None:
        waiting = self._waiting.pop(room.chat_id, None)
        if waiting is not None:
            self.counts["abandoned"] += 1
            self._event("QueueCallerAbandon", room, hold_s=time.monotonic() - waiting.since)
            if waiting.offered_to:
                self._withdraw(waiting)
            self._dispatch()
            return
        agent = self._agents.get(room.agent)
        if room.state == "agent" and agent is not None and agent.chat is room:
            self.counts["customer_ended"] += 1
            self._event("AgentComplete", room, agent.name)
            self._path(room, "chat_ended", by=why)
            reason = "customer" if why == "customer" else "customer_left"
            self._to_agent(agent, {"type": "ended", "chat": room.chat_id, "reason": reason})
            agent.chat, agent.idle_since = None, time.monotonic()
            self._dispatch()

    # ---- the agent's side (ivr.web.chat) ----------------------------------------------------
    def connect(self, name: str, send: Send) -> list[Message]:
        """An agent's chat connection; returns what it starts with: the state, then the chat's
        history or the pending offer."""
        agent = self._agents.setdefault(name, DeskAgent(name))
        first: list[Message] = [{"type": "state", "ready": agent.ready,
                                 "chat": self._chat_info(agent)}]
        if agent.chat is not None:
            room = agent.chat
            first.append({"type": "history", "chat": room.chat_id,
                          "messages": room.history_for_agent()})
        elif agent.offer is not None:
            first.append(self._offer_message(agent.offer))
        agent.links.add(send)
        return first

    def disconnect(self, name: str, send: Send) -> None:
        agent = self._agents.get(name)
        if agent is None:
            return
        agent.links.discard(send)
        if not agent.links and agent.offer is not None:  # offered to nobody now: next agent
            self._no_answer(agent.offer)

    def set_ready(self, name: str, on: bool) -> None:
        agent = self._agents.setdefault(name, DeskAgent(name))
        agent.ready = on
        if not on and agent.offer is not None:
            self._no_answer(agent.offer)
        self._dispatch()

    def accept(self, name: str, chat_id: str) -> str | None:
        """The agent takes the chat offered to them; returns an error text, or None."""
        agent = self._agents.get(name)
        waiting = self._waiting.get(chat_id)
        if agent is None or waiting is None or waiting.offered_to != name:
            return "该会话已不可接入。"
        del self._waiting[chat_id]
        room = waiting.room
        agent.offer, agent.chat = None, room
        room.state, room.agent = "agent", name
        self.counts["accepted"] += 1
        self._event("AgentConnect", room, name, hold_s=time.monotonic() - waiting.since)
        self._path(room, "agent_joined", agent=name,
                   waited_s=round(time.monotonic() - waiting.since, 1))
        room.post("agent_joined", agent=name)
        self._to_agent(agent, {"type": "history", "chat": chat_id,
                               "messages": room.history_for_agent()})
        self._positions()
        return None

    def send(self, name: str, chat_id: str, text: str) -> str | None:
        room = self._room_of(name, chat_id)
        if room is None:
            return "该会话已结束。"
        text = text.strip()
        if not text or len(text) > AGENT_TEXT_CHARS:
            return f"消息不能为空，也不能超过{AGENT_TEXT_CHARS}字。"
        room.say(text, who="agent", agent=name)
        self._path(room, "agent_text", text=mask_digits_in_text(text))
        agent = self._agents[name]
        self._to_agent(agent, {"type": "msg", "chat": chat_id, "seq": room.seq, "from": "agent",
                               "text": text})
        return None

    def typing(self, name: str, chat_id: str, on: bool) -> None:
        room = self._room_of(name, chat_id)
        if room is not None:
            room.post("typing", keep=False, on=on)

    def close_chat(self, name: str, chat_id: str) -> str | None:
        room = self._room_of(name, chat_id)
        if room is None:
            return "该会话已结束。"
        agent = self._agents[name]
        self.counts["closed"] += 1
        self._event("AgentComplete", room, name)
        self._path(room, "chat_ended", by="agent")
        room.say(P["chat_agent_left"], who="system")
        room.ask_rating()
        room.finish("agent_closed")
        agent.chat, agent.idle_since = None, time.monotonic()
        self._to_agent(agent, {"type": "ended", "chat": chat_id, "reason": "agent_closed"})
        self._dispatch()
        return None

    # ---- assignment -----------------------------------------------------------------------
    def _dispatch(self) -> None:
        order = sorted(self._waiting.values(),
                       key=lambda w: (w.room.line != "priority", w.since))
        for waiting in order:
            if waiting.offered_to:
                continue
            free = [a for a in self._agents.values()
                    if a.ready and a.links and a.chat is None and a.offer is None]
            if not free:
                return
            fresh = [a for a in free if a.name not in waiting.passed_over] or free
            agent = min(fresh, key=lambda a: a.idle_since)
            waiting.offered_to, waiting.offered_at = agent.name, time.monotonic()
            agent.offer = waiting
            self.counts["offered"] += 1
            self._event("AgentCalled", waiting.room, agent.name)
            self._to_agent(agent, self._offer_message(waiting))

    def _offer_message(self, waiting: Waiting) -> Message:
        room = waiting.room
        return {"type": "offer", "chat": room.chat_id, "handoff_id": room.handoff_id,
                "line": room.line, "waiting_s": round(time.monotonic() - waiting.since)}

    def _no_answer(self, waiting: Waiting) -> None:
        agent = self._agents.get(waiting.offered_to)
        if agent is not None:
            self._event("AgentRingNoAnswer", waiting.room, agent.name)
        waiting.passed_over.add(waiting.offered_to)
        self.counts["no_answer"] += 1
        self._withdraw(waiting)

    def _withdraw(self, waiting: Waiting) -> None:
        agent = self._agents.get(waiting.offered_to)
        waiting.offered_to = ""
        if agent is not None and agent.offer is waiting:
            agent.offer = None
            self._to_agent(agent, {"type": "withdrawn", "chat": waiting.room.chat_id})

    def _position(self, chat_id: str) -> int:
        return next((i for i, c in enumerate(self._waiting) if c == chat_id), 0)

    def _positions(self) -> None:
        for i, waiting in enumerate(self._waiting.values()):
            if not waiting.offered_to:
                waiting.room.post("queued", keep=False, position=i)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.expire(time.monotonic())

    def expire(self, now: float) -> None:
        """Offers past their timeout go to another agent; chats waiting too long end."""
        for waiting in list(self._waiting.values()):
            room = waiting.room
            if now - waiting.since > self.queue_timeout_s:
                del self._waiting[room.chat_id]
                if waiting.offered_to:
                    self._withdraw(waiting)
                self.counts["queue_timeout"] += 1
                self._event("QueueCallerAbandon", room, hold_s=now - waiting.since)
                room.say(P["chat_queue_timeout"], who="system")
                room.finish("queue_timeout")
            elif waiting.offered_to and now - waiting.offered_at > self.offer_timeout_s:
                self._no_answer(waiting)
        self._dispatch()

    # ---- plumbing -------------------------------------------------------------------------
    def _room_of(self, name: str, chat_id: str) -> ChatRoomView | None:
        agent = self._agents.get(name)
        if agent is None or agent.chat is None or agent.chat.chat_id != chat_id:
            return None
        return agent.chat

    def _chat_info(self, agent: DeskAgent) -> Message | None:
        if agent.chat is not None:
            return {"chat": agent.chat.chat_id, "state": "agent", "line": agent.chat.line,
                    "handoff_id": agent.chat.handoff_id}
        if agent.offer is not None:
            return {**self._offer_message(agent.offer), "state": "offered"}
        return None

    def _to_agent(self, agent: DeskAgent, message: Message) -> None:
        for send in list(agent.links):
            if not send(message):
                agent.links.discard(send)  # it fell behind and is closing; it reconnects

    def _path(self, room: ChatRoomView, name: str, **detail: object) -> None:
        if self.journal is not None and room.call_id is not None:
            self.journal.step(room.call_id, name, detail)

    def _event(self, kind: str, room: ChatRoomView, agent: str = "",
               hold_s: float | None = None) -> None:
        if self.events is None:
            return
        event = QueueEvent(kind=kind, queue=queue_for(room.line), channel=room.channel_id,
                           uniqueid=room.channel_id, member=f"CHAT/{agent}" if agent else "",
                           variables={"IVR_HANDOFF_ID": room.handoff_id} if room.handoff_id
                           else {}, received_at=time.monotonic(), hold_s=hold_s)
        self._queue(event)

    def _queue(self, item: QueueEvent | tuple[str, str]) -> None:
        if self._events.full():
            self._events.get_nowait()
            self.counts["events_dropped"] += 1
        self._events.put_nowait(item)

    async def _pump(self) -> None:
        while True:
            item = await self._events.get()
            try:
                if isinstance(item, tuple):
                    if self.words is not None:
                        await self.words(*item)
                elif self.events is not None:
                    await self.events(item)
            except Exception:  # one event must not stop the pops of every later chat
                log.exception("chat desk event %s not handled", type(item).__name__)

    def metrics_lines(self) -> list[str]:
        out = ["# TYPE ivr_chat_waiting gauge", f"ivr_chat_waiting {self.waiting}",
               "# TYPE ivr_chat_desk_total counter"]
        out += [f'ivr_chat_desk_total{{event="{k}"}} {v}' for k, v in sorted(self.counts.items())]
        return out
