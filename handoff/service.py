"""The handoff service: screen pops from the moment of transfer to the agent whose phone rings.

- ``handoff(context)`` (the session's ``HandoffSink``): builds the pop (pure, no I/O), keeps it
  in memory and queues its Redis writes; returns at once, never waiting for Redis or a model.
- An AMI watcher: on ``AgentCalled`` for a channel that has a pop, the pop is offered to that
  agent (``PJSIP/agent1`` -> ``agent1``): delivered to the agent's open desktops in this
  process at once, stored as the agent's current pop and published on the agent's channel.
  ``AgentConnect`` marks who answered (the other ringing agents get ``withdrawn``);
  ``AgentRingNoAnswer`` and ``QueueCallerAbandon`` withdraw it.
- The LLM summary: one background task per pop (bounded: ``llm_concurrency`` at once,
  ``llm_max_pending`` waiting, beyond that skipped and counted), merged into the pop and
  delivered again when it comes back; the deterministic summary stays when it does not.
- Knowledge suggestions (when a ``Suggester`` is attached, ``attach_suggester``): one
  background task per pop (bounded like the summaries: ``SUGGEST_MAX_PENDING``), stored in
  the pop (``pop.suggestions``, so a late desktop gets them with the pop) and sent to the
  desktops showing it as ``{"type": "suggestions", "handoff_id", "version", "items"}``;
  ``refresh_suggestions(handoff_id)`` runs it again when the transcript has grown.
- Desktops (``ivr.web.agent``) subscribe per agent and get bounded queues (``DESKTOP_QUEUE``;
  when full the oldest update is dropped and counted: every update carries the whole pop).

Pops of other processes arrive through the Redis agent channels (``PopStore.listen``).
Every task is owned here and cancelled by ``close()``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from handoff.assist import AssistMixin, Envelope
from handoff.knowledge.suggest import Suggester
from handoff.live import LiveTranscripts
from handoff.metrics import HandoffMetrics
from handoff.pop import ScreenPop, build_pop
from handoff.store import POPS_CHANNEL, PopStore, Write, agent_channel, channel_key, current_key
from handoff.store import pop_key as store_pop_key
from handoff.summary import LlmSummarizer
from handoff.tickets import TicketFiller
from ivr.core.config import HandoffSettings, LLMSettings
from ivr.core.handoff import HandoffContext, is_chat
from ivr.telephony.ami import AmiClient, QueueEvent

log = logging.getLogger("handoff.service")

MEMORY_POPS = 2000  # pops kept in memory (Redis keeps them for a day)
DESKTOP_QUEUE = 32
AMI_QUEUE = 512
_AGENT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def agent_name(member: str) -> str | None:
    """``PJSIP/agent1`` (or ``PJSIP/agent1@host``, ``agent1``) -> ``agent1``."""
    name = member.split("/", 1)[-1].split("@", 1)[0].split(";", 1)[0]
    return name if _AGENT_NAME.match(name) else None


class HandoffService(AssistMixin):
    def __init__(self, redis: aioredis.Redis, settings: HandoffSettings, llm: LLMSettings, *,
                 ami: AmiClient | None = None) -> None:
        self.settings = settings
        self.metrics = HandoffMetrics()
        self.store = PopStore(redis, self.metrics, ttl_s=settings.pop_ttl_s)
        self.ami = ami
        self.summarizer = LlmSummarizer(llm)
        self.ticket_filler = TicketFiller(llm)
        if not settings.llm_summary:
            self.summarizer.enabled = False
            self.ticket_filler.enabled = False
        self.origin = uuid.uuid4().hex[:12]  # tells our own Redis messages from others'
        self._pops: OrderedDict[str, ScreenPop] = OrderedDict()
        self._by_channel: OrderedDict[str, str] = OrderedDict()
        self._current: dict[str, str] = {}  # agent -> handoff id on their desktop
        self._desktops: dict[str, set[asyncio.Queue[Envelope]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._llm_tasks: set[asyncio.Task[None]] = set()
        self._llm_slots = asyncio.Semaphore(max(1, settings.llm_concurrency))
        self.suggester: Suggester | None = None
        self._suggest_tasks: set[asyncio.Task[None]] = set()
        self.live: LiveTranscripts | None = None  # the caller's words during the agent call
        self._own: OrderedDict[str, None] = OrderedDict()  # pops made here (live taps here only)
        # how each wait in a queue ended, for the call's record (the app: the journal's)
        self.queue_results: Callable[[uuid.UUID, str, float | None], None] | None = None

    # ---- life cycle -------------------------------------------------------------------
    async def start(self) -> None:
        self.store.start()
        self._spawn(self.store.listen(self._from_other_process), "handoff-listen")
        if self.ami is not None:
            self._spawn(self._watch(self.ami), "handoff-ami")

    async def close(self) -> None:
        tasks = [*self._tasks, *self._llm_tasks, *self._suggest_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.live is not None:
            await self.live.close()
        await self.store.close()
        await self.summarizer.close()
        await self.ticket_filler.close()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- the session's sink ---------------------------------------------------------------
    async def handoff(self, context: HandoffContext) -> None:
        t = time.perf_counter()
        pop = build_pop(context)
        self.metrics.build_s.observe(time.perf_counter() - t)
        self.metrics.pops += 1
        if not self.summarizer.enabled:
            pop.llm_status = "disabled"
            self.metrics.llm["disabled"] += 1
        self._remember(pop)
        self._own[pop.handoff_id] = None
        while len(self._own) > MEMORY_POPS:
            self._own.popitem(last=False)
        self._save(pop, event="queued", index=True)
        if self.summarizer.enabled:
            self._summarize_later(pop)
        if self.ticket_filler.enabled:
            self._fill_ticket_later(pop)
        else:
            pop.ticket_status = "disabled"
        if self.suggester is not None:
            self._suggest_later(pop)

    # ---- desktops -----------------------------------------------------------------------
    def subscribe(self, agent: str) -> asyncio.Queue[Envelope]:
        q: asyncio.Queue[Envelope] = asyncio.Queue(DESKTOP_QUEUE)
        self._desktops.setdefault(agent, set()).add(q)
        return q

    def unsubscribe(self, agent: str, q: asyncio.Queue[Envelope]) -> None:
        queues = self._desktops.get(agent)
        if queues is not None:
            queues.discard(q)
            if not queues:
                del self._desktops[agent]

    @property
    def desktops(self) -> int:
        return sum(len(qs) for qs in self._desktops.values())

    async def current(self, agent: str) -> ScreenPop | None:
        """The pop the agent's desktop shows now (what a late or reconnecting desktop gets)."""
        if agent in self._current:  # this process knows (an empty id: withdrawn)
            handoff_id: str | None = self._current[agent]
        else:
            handoff_id = await self.store.current_of(agent)
        return await self._pop(handoff_id) if handoff_id else None

    def envelope(self, pop: ScreenPop, event: str, agent: str | None) -> Envelope:
        return {"type": "pop", "event": event, "agent": agent, "origin": self.origin,
                "pop": pop.to_dict()}

    def metrics_lines(self) -> list[str]:
        lines = self.metrics.lines(self.desktops)
        if self.suggester is not None:
            lines += self.suggester.metrics_lines()
        if self.live is not None:
            lines += self.live.metrics_lines()
        return lines

    # ---- AMI ----------------------------------------------------------------------------
    async def _watch(self, ami: AmiClient) -> None:
        events = ami.subscribe(AMI_QUEUE)  # bounded; AmiClient drops the oldest when full
        try:
            while True:
                event = await events.get()
                try:
                    await self.on_queue_event(event)
                except Exception:  # one odd event must not stop the screen pops
                    log.exception("queue event %s for %s not handled", event.kind,
                                  event.uniqueid)
        finally:
            ami.unsubscribe(events)

    async def on_queue_event(self, event: QueueEvent) -> None:
        kind = event.kind
        if kind not in ("AgentCalled", "AgentConnect", "AgentRingNoAnswer", "AgentComplete",
                        "QueueCallerAbandon"):
            return
        pop = await self._pop_for_channel(event.uniqueid, event.variables.get("IVR_HANDOFF_ID"))
        if pop is None:
            if kind == "AgentCalled":
                self.metrics.unknown_calls += 1
            return
        agent = agent_name(event.member) if event.member else None
        if kind == "AgentCalled" and agent is not None:
            if agent not in pop.offered_to:
                pop.offered_to.append(agent)
            if pop.state == "queued":
                pop.state = "ringing"
            pop.queue = event.queue or pop.queue
            pop.version += 1
            self.metrics.assigned += 1
            self._offer(agent, pop, "offered", event.received_at or time.monotonic())
        elif kind == "AgentConnect" and agent is not None:
            self._queue_result(pop, "answered", event.hold_s)
            pop.agent, pop.state = agent, "connected"
            pop.version += 1
            self._offer(agent, pop, "connected")
            for other in pop.offered_to:
                if other != agent:
                    self._withdraw(other, pop, "answered_elsewhere")
            if self.live is not None and pop.handoff_id in self._own and \
                    not is_chat(pop.channel_id):  # a chat's words come as text (chatdesk)
                self.live.follow(pop.handoff_id, pop.channel_id)
        elif kind == "AgentRingNoAnswer" and agent is not None and pop.state == "ringing":
            self._withdraw(agent, pop, "no_answer")
        elif kind == "AgentComplete":
            if self.live is not None:
                self.live.stop(pop.handoff_id)
            pop.state = "ended"
            pop.version += 1
            self._save(pop, event="ended")
            if pop.agent:
                self._deliver(pop.agent, self.envelope(pop, "ended", pop.agent))
        elif kind == "QueueCallerAbandon":
            self._queue_result(pop, "abandoned", event.hold_s)
            if self.live is not None:
                self.live.stop(pop.handoff_id)
            pop.state = "abandoned"
            pop.version += 1
            self._save(pop, event="abandoned")
            for other in pop.offered_to:
                self._withdraw(other, pop, "abandoned")

    def _queue_result(self, pop: ScreenPop, result: str, wait_s: float | None) -> None:
        """Into the call's record (the analytics' queue waits and abandonment), made here."""
        if self.queue_results is not None and pop.handoff_id in self._own:
            try:
                self.queue_results(uuid.UUID(pop.call_id), result, wait_s)
            except ValueError:
                log.warning("pop %s has no call id: queue result not kept", pop.handoff_id[:8])

    # ---- delivery -----------------------------------------------------------------------
    def _offer(self, agent: str, pop: ScreenPop, event: str, t_event: float | None = None) -> None:
        """The pop becomes the agent's current one: desktops of this process first (no Redis
        on that path), then Redis (stored, and published for other processes)."""
        self._current[agent] = pop.handoff_id
        envelope = self.envelope(pop, event, agent)
        self._deliver(agent, envelope)
        if t_event is not None:
            self.metrics.deliver_s.observe(time.monotonic() - t_event)
        message = json.dumps(envelope, ensure_ascii=False)

        def published(ok: bool) -> None:
            if ok and t_event is not None:
                self.metrics.publish_s.observe(time.monotonic() - t_event)

        self.store.write(Write([
            ("set", store_pop_key(pop.handoff_id), json.dumps(pop.to_dict(), ensure_ascii=False)),
            ("set", current_key(agent), pop.handoff_id),
            ("publish", agent_channel(agent), message),
            ("publish", POPS_CHANNEL, message),
        ], published))

    def _withdraw(self, agent: str, pop: ScreenPop, why: str) -> None:
        if agent in pop.offered_to and agent != pop.agent:
            pop.offered_to.remove(agent)
        if self._current.get(agent) == pop.handoff_id:
            self._current[agent] = ""
        envelope = {"type": "withdrawn", "handoff_id": pop.handoff_id, "reason": why,
                    "agent": agent, "origin": self.origin}
        self._deliver(agent, envelope)
        self.store.write(Write([
            ("del_if", current_key(agent), pop.handoff_id),
            ("publish", agent_channel(agent), json.dumps(envelope, ensure_ascii=False)),
        ]))

    def _deliver(self, agent: str, envelope: Envelope) -> None:
        for q in self._desktops.get(agent, ()):
            if q.full():
                q.get_nowait()
                self.metrics.deliveries_dropped += 1
            q.put_nowait(envelope)

    def _save(self, pop: ScreenPop, *, event: str, index: bool = False) -> None:
        data = json.dumps(pop.to_dict(), ensure_ascii=False)
        ops = [("set", store_pop_key(pop.handoff_id), data)]
        if index:
            ops.append(("set", channel_key(pop.channel_id), pop.handoff_id))
        ops.append(("publish", POPS_CHANNEL, json.dumps(
            {"type": "pop", "event": event, "origin": self.origin, "pop": pop.to_dict()},
            ensure_ascii=False)))
        self.store.write(Write(ops))

    async def _from_other_process(self, agent: str, envelope: Envelope) -> None:
        if envelope.get("origin") == self.origin:
            return  # ours: already delivered in this process
        if envelope.get("type") == "pop" and isinstance(envelope.get("pop"), dict):
            pop = ScreenPop.from_dict(envelope["pop"])
            known = self._pops.get(pop.handoff_id)
            if known is None or known.version <= pop.version:
                self._remember(pop)
            self._current[agent] = pop.handoff_id
        elif envelope.get("type") == "withdrawn":
            if self._current.get(agent) == envelope.get("handoff_id"):
                self._current[agent] = ""
        elif envelope.get("type") == "suggestions":
            known = self._pops.get(str(envelope.get("handoff_id")))
            if known is not None and isinstance(envelope.get("items"), list):
                known.suggestions = envelope["items"]
        self._deliver(agent, envelope)

    # ---- memory ---------------------------------------------------------------------------
    def _remember(self, pop: ScreenPop) -> None:
        self._pops[pop.handoff_id] = pop
        self._pops.move_to_end(pop.handoff_id)
        self._by_channel[pop.channel_id] = pop.handoff_id
        self._by_channel.move_to_end(pop.channel_id)
        while len(self._pops) > MEMORY_POPS:
            self._pops.popitem(last=False)
        while len(self._by_channel) > MEMORY_POPS:
            self._by_channel.popitem(last=False)

    async def _pop(self, handoff_id: str) -> ScreenPop | None:
        pop = self._pops.get(handoff_id)
        if pop is not None:
            return pop
        data = await self.store.load_pop(handoff_id)
        if data is None:
            return None
        try:
            pop = ScreenPop.from_dict(data)
        except TypeError as exc:
            log.warning("screen pop %s in Redis unusable: %s", handoff_id, exc)
            return None
        self._remember(pop)
        return pop

    async def _pop_for_channel(self, channel_id: str, handoff_id: str | None) -> ScreenPop | None:
        hid = handoff_id or self._by_channel.get(channel_id)
        if hid is None and channel_id:
            hid = await self.store.handoff_for_channel(channel_id)
        return await self._pop(hid) if hid else None

    async def find_pop(self, handoff_id: str) -> ScreenPop | None:
        """A pop by its handoff id (memory, then Redis), for the desktop's APIs."""
        return await self._pop(handoff_id)
