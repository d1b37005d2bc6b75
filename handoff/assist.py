"""The agent-assist half of the handoff service, in the background of every pop: the LLM
summary and ticket draft (bounded: ``llm_concurrency`` at once, ``llm_max_pending`` waiting,
beyond that skipped and counted), knowledge suggestions (bounded: ``SUGGEST_MAX_PENDING``), and
the caller's words during the agent call (``handoff.live``) that grow the transcript and
refresh the suggestions. Mixed into ``HandoffService``, whose state and delivery it uses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from handoff.knowledge.suggest import Suggester
from handoff.live import LiveTranscripts
from handoff.metrics import HandoffMetrics
from handoff.pop import ScreenPop
from handoff.store import PopStore, Write, agent_channel
from handoff.summary import LlmSummarizer, SummaryResult
from handoff.tickets import FillResult, TicketFiller, draft_from_pop, ticket_view
from ivr.core.config import HandoffSettings
from ivr.core.privacy import mask_digits_in_text

log = logging.getLogger("handoff.service")

SUGGEST_MAX_PENDING = 32  # suggestion tasks at once (beyond: skipped, counted)
LIVE_LINES_MAX = 400  # transcript lines a pop keeps (the oldest live lines go first)
Envelope = dict[str, Any]


class AssistMixin:
    settings: HandoffSettings
    metrics: HandoffMetrics
    store: PopStore
    origin: str
    summarizer: LlmSummarizer
    ticket_filler: TicketFiller
    suggester: Suggester | None
    live: LiveTranscripts | None
    _pops: OrderedDict[str, ScreenPop]
    _current: dict[str, str]
    _llm_tasks: set[asyncio.Task[None]]
    _llm_slots: asyncio.Semaphore
    _suggest_tasks: set[asyncio.Task[None]]

    if TYPE_CHECKING:
        def _save(self, pop: ScreenPop, *, event: str, index: bool = False) -> None: ...

        def _offer(self, agent: str, pop: ScreenPop, event: str,
                   t_event: float | None = None) -> None: ...

        def _deliver(self, agent: str, envelope: Envelope) -> None: ...

        async def _pop(self, handoff_id: str) -> ScreenPop | None: ...

    def _changed(self, pop: ScreenPop, event: str) -> None:
        """A newer version of the pop: stored, and sent to the desktops showing it."""
        pop.version += 1
        self._save(pop, event=event)
        for agent in self._showing(pop):
            self._offer(agent, pop, event)

    def _showing(self, pop: ScreenPop) -> set[str]:
        """The agents whose desktop shows this pop now."""
        return {a for a in {*pop.offered_to, *([pop.agent] if pop.agent else [])}
                if self._current.get(a) == pop.handoff_id}

    # ---- the LLM summary --------------------------------------------------------------------
    def _summarize_later(self, pop: ScreenPop) -> None:
        if len(self._llm_tasks) >= self.settings.llm_max_pending:
            pop.llm_status = "skipped"
            self.metrics.llm["skipped"] += 1
            return
        _owned(self._llm_tasks, self._summarize(pop), f"summary-{pop.handoff_id[:8]}")

    async def _summarize(self, pop: ScreenPop) -> None:
        async with self._llm_slots:
            try:
                result = await self.summarizer.summarize(pop)
            except Exception as exc:  # a client bug must not leave the pop "pending" forever
                log.exception("LLM summary of handoff %s failed", pop.handoff_id[:8])
                result = SummaryResult("error", detail=type(exc).__name__)
        self.metrics.llm[result.status] += 1
        self.metrics.llm_s.observe(result.elapsed_s)
        if result.status != "ok":
            log.info("LLM summary of handoff %s: %s %s", pop.handoff_id[:8], result.status,
                     result.detail)
        current = self._pops.get(pop.handoff_id, pop)
        current.llm_status = result.status
        if result.summary is not None:
            current.llm_summary = result.summary
        self._changed(current, "summary")

    # ---- the LLM ticket draft (handoff.tickets) ------------------------------------------------
    def _fill_ticket_later(self, pop: ScreenPop) -> None:
        if len(self._llm_tasks) >= self.settings.llm_max_pending:
            pop.ticket_status = "skipped"
            self.metrics.tickets["skipped"] += 1
            return
        _owned(self._llm_tasks, self._fill_ticket(pop), f"ticket-{pop.handoff_id[:8]}")

    async def _fill_ticket(self, pop: ScreenPop) -> None:
        async with self._llm_slots:
            try:
                result = await self.ticket_filler.fill(pop)
            except Exception as exc:  # a client bug must not leave the ticket "pending"
                log.exception("LLM ticket of handoff %s failed", pop.handoff_id[:8])
                result = FillResult("error", draft_from_pop(pop), detail=type(exc).__name__)
        self.metrics.tickets[result.status] += 1
        for name in result.dropped:
            self.metrics.ticket_fields_dropped[name] += 1
        if result.status != "ok" or result.dropped:
            log.info("LLM ticket of handoff %s: %s %s dropped=%s", pop.handoff_id[:8],
                     result.status, result.detail, result.dropped)
        current = self._pops.get(pop.handoff_id, pop)
        current.ticket_status = result.status
        if result.status == "ok":
            current.ticket = {**current.ticket, **ticket_view(
                result.form, llm_filled=result.filled, llm_dropped=result.dropped)}
        self._changed(current, "ticket")

    async def wait_summaries(self, timeout: float) -> None:
        """For tests and shutdown: wait for the summaries in flight."""
        await _settled(self._llm_tasks, timeout)

    # ---- knowledge suggestions ----------------------------------------------------------------
    def attach_suggester(self, suggester: Suggester | None) -> None:
        self.suggester = suggester

    async def refresh_suggestions(self, handoff_id: str) -> None:
        """Suggest again for a pop whose transcript grew (nothing happens if the query is the
        same as last time)."""
        pop = await self._pop(handoff_id)
        if pop is not None and self.suggester is not None:
            self._suggest_later(pop)

    def suggestions_envelope(self, pop: ScreenPop) -> Envelope:
        return {"type": "suggestions", "handoff_id": pop.handoff_id, "version": pop.version,
                "items": pop.suggestions, "origin": self.origin}

    def _suggest_later(self, pop: ScreenPop) -> None:
        if len(self._suggest_tasks) >= SUGGEST_MAX_PENDING:
            if self.suggester is not None:
                self.suggester.outcomes["skipped"] += 1
            return
        _owned(self._suggest_tasks, self._suggest(pop), f"suggest-{pop.handoff_id[:8]}")

    async def _suggest(self, pop: ScreenPop) -> None:
        if self.suggester is None:
            return
        items = await self.suggester.suggest(pop)
        if items is None:
            return  # same query as last time
        current = self._pops.get(pop.handoff_id, pop)
        current.suggestions = items
        current.version += 1
        self._save(current, event="suggestions")
        envelope = self.suggestions_envelope(current)
        message = json.dumps(envelope, ensure_ascii=False)
        for agent in self._showing(current):
            self._deliver(agent, envelope)
            self.store.write(Write([("publish", agent_channel(agent), message)]))

    async def wait_suggestions(self, timeout: float) -> None:
        """For tests and shutdown: wait for the suggestion tasks in flight."""
        await _settled(self._suggest_tasks, timeout)

    # ---- the caller's words during the agent call (handoff.live) --------------------------------
    def attach_live(self, live: LiveTranscripts | None) -> None:
        self.live = live

    async def add_caller_words(self, handoff_id: str, text: str) -> None:
        """One utterance of the caller heard during the agent call: appended to the pop's
        transcript (digits masked), shown on the agent's desktop, suggestions asked again."""
        pop = self._pops.get(handoff_id)
        if pop is None:
            return
        t = round(max(0.0, time.time() - pop.started_at), 1)
        pop.transcript.append({"t": t, "who": "caller", "kind": "speech",
                               "text": mask_digits_in_text(text), "live": True})
        if len(pop.transcript) > LIVE_LINES_MAX:
            first_live = next((i for i, line in enumerate(pop.transcript) if line.get("live")), 0)
            del pop.transcript[first_live]
        self._changed(pop, "transcript")
        if self.suggester is not None:
            self._suggest_later(pop)


def _owned(tasks: set[asyncio.Task[None]], coro: Coroutine[Any, Any, None], name: str) -> None:
    """A background task kept in ``tasks`` until it ends (the service cancels them on close)."""
    task = asyncio.create_task(coro, name=name)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _settled(tasks: set[asyncio.Task[None]], timeout: float) -> None:
    """Wait up to ``timeout`` for the tasks in flight (tests and shutdown)."""
    if tasks:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout)
