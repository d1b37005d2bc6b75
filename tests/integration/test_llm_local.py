"""The handoff's LLM paths against a real model: llama.cpp serving Gemma 3 270M behind an
OpenAI-compatible API (``tests/local_llm.py``), called by the production ``openai`` client.

The model is tiny and its answers are poor, which is the point: its raw answers are recorded,
and whatever it says, the outcome is the one that answer calls for: a summary that passes
validation is shown (``ok``), anything else keeps the deterministic summary alone
(``invalid``); a JSON answer completes the ticket draft with only the fields that pass the
form's schema (``ok``), anything else leaves the draft as it was (``invalid``). Nothing is
``error`` (the wire format is right), and a model slower than the timeout is abandoned without
wedging the server."""

from __future__ import annotations

import asyncio
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from handoff.pop import build_pop
from handoff.rules import SECTIONS, summary_text
from handoff.service import HandoffService
from handoff.store import current_key
from handoff.summary import MAX_CHARS, LlmChat, LlmSummarizer, parse_summary
from handoff.tickets import LLM_FIELDS, TICKET_TYPES, TicketForm, draft_from_pop, merge_llm_fields
from ivr.core.config import HandoffSettings, LLMSettings
from ivr.core.handoff import HandoffContext, TraceEntry
from ivr.core.storage.redis_server import connect_redis
from tests.integration.test_handoff_service import context, queue_event
from tests.local_llm import LocalLLM

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
async def llm() -> AsyncIterator[LocalLLM]:
    server = await LocalLLM(_free_port()).start()
    yield server
    await server.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = await connect_redis(redis_url)
    await client.delete(current_key("agent1"))
    yield client
    await client.aclose()


def settings_for(llm: LocalLLM, timeout_s: float) -> LLMSettings:
    return LLMSettings(base_url=llm.base_url, model=llm.model, api_key=SecretStr("sk-local"),
                       timeout_s=timeout_s)


def spoken_context() -> HandoffContext:
    ctx = context(f"{time.time():.0f}.{uuid.uuid4().int % 10000}")
    said = "我的加油卡丢了，想挂失，卡里还有两千多块钱"
    ctx.trace.insert(4, TraceEntry(10.5, "speech", {"text": said}))
    return ctx


def record_answers(monkeypatch: pytest.MonkeyPatch, chat: LlmChat) -> list[str | None]:
    """The model's raw answers to ``chat``'s client (the summary's or the ticket's), recorded as
    they pass, so that each outcome can be checked against what the model really said."""
    answers: list[str | None] = []
    completions = chat._get_client().chat.completions
    create = completions.create

    async def recording(*args: Any, **kwargs: Any) -> Any:
        reply = await create(*args, **kwargs)
        answers.append(reply.choices[0].message.content if reply.choices else None)
        return reply

    monkeypatch.setattr(completions, "create", recording)
    return answers


def updates_of(desktop: asyncio.Queue[dict[str, Any]], handoff_id: str) -> dict[str, Any]:
    """The desktop's pending updates of one pop, by event (the newest of each)."""
    out: dict[str, Any] = {}
    while not desktop.empty():
        message = desktop.get_nowait()
        if message.get("type") == "pop" and message["pop"]["handoff_id"] == handoff_id:
            out[message["event"]] = message["pop"]
    return out


async def test_summary_and_ticket_from_a_real_model(llm: LocalLLM, redis: aioredis.Redis,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    service = HandoffService(redis, HandoffSettings(), settings_for(llm, 120.0))
    said_summary = record_answers(monkeypatch, service.summarizer)
    said_ticket = record_answers(monkeypatch, service.ticket_filler)
    await service.start()
    try:
        ctx = spoken_context()
        expected = build_pop(ctx)  # the deterministic pop, built apart from the service
        desktop = service.subscribe("agent1")
        t = time.perf_counter()
        await service.handoff(ctx)
        assert time.perf_counter() - t < 0.05  # the pop never waits for the model
        await service.on_queue_event(queue_event("AgentCalled", ctx.channel_id))
        offered = desktop.get_nowait()["pop"]
        assert (offered["llm_status"], offered["ticket_status"]) == ("pending", "pending")
        assert offered["summary"] == expected.summary and offered["llm_summary"] is None
        assert offered["ticket"] == expected.ticket
        await service.wait_summaries(240)
        pop = await service.current("agent1")
        assert pop is not None and pop.handoff_id == ctx.handoff_id
        print(f"\nreal model: summary {pop.llm_status}, ticket {pop.ticket_status}; "
              f"server log: {llm.log[1:]}\nsummary answer: {said_summary!r}\n"
              f"ticket answer: {said_ticket!r}")
        # the model answered each request once (the wire format is right: never error or
        # timeout), and whatever it said, the outcome is the one its answer calls for
        assert len(said_summary) == 1 and len(said_ticket) == 1, (said_summary, said_ticket)
        updates = updates_of(desktop, pop.handoff_id)
        assert updates["summary"]["llm_status"] == pop.llm_status  # the desktop was told
        assert updates["ticket"]["ticket_status"] == pop.ticket_status
        assert pop.summary == expected.summary  # the structured part is never replaced

        parsed = parse_summary(said_summary[0])
        if parsed is None:  # the tiny model's usual answer: truncated or not the 4 sections
            assert pop.llm_status == "invalid", said_summary
            assert pop.llm_summary is None  # the deterministic summary alone
        else:
            assert pop.llm_status == "ok", said_summary
            assert pop.llm_summary == parsed
            sections = {k: v for k, v in parsed.items() if k != "text"}
            assert set(sections) == {key for key, _ in SECTIONS}
            assert all(isinstance(v, str) and v.strip() for v in sections.values())
            assert sum(len(v) for v in sections.values()) <= MAX_CHARS
            assert parsed["text"] == summary_text(sections)
            assert not any(re.search(r"\d{6}", v) for v in parsed.values())  # masked

        draft = draft_from_pop(expected)  # what the model was asked to complete
        merged = merge_llm_fields(draft, said_ticket[0])
        ticket_fields = {k: v for k, v in pop.ticket.items() if k in TicketForm.model_fields}
        if merged is None:  # not a JSON object: the deterministic draft stays as it was
            assert pop.ticket_status == "invalid", said_ticket
            assert pop.ticket == expected.ticket
            assert "llm_filled" not in pop.ticket
        else:
            assert pop.ticket_status == "ok", said_ticket
            form, filled, dropped = merged
            assert TicketForm.model_validate(ticket_fields) == form  # valid per the schema
            assert (pop.ticket["llm_filled"], pop.ticket["llm_dropped"]) == (filled, dropped)
            assert set(filled) <= set(LLM_FIELDS) and not set(filled) & set(dropped)
            for name in TicketForm.model_fields:  # the model wrote only what it filled
                changed = getattr(form, name) != getattr(draft, name)
                assert changed == (name in filled), (name, getattr(form, name))
            assert form.type in TICKET_TYPES[form.line] or form.type == draft.type
            assert pop.ticket["type_label"] == form.labels()["type_label"]
        form = TicketForm.model_validate(ticket_fields)
        assert form.contact == "138****8000"  # never from the model (masked like the pop)
        assert (form.line, form.account_tail) == (draft.line, draft.account_tail)
        lines = "\n".join(service.metrics_lines())
        assert f'ivr_handoff_llm_summaries_total{{status="{pop.llm_status}"}} 1' in lines
        assert f'ivr_handoff_llm_tickets_total{{status="{pop.ticket_status}"}} 1' in lines
    finally:
        await service.close()


async def test_a_slow_real_model_is_abandoned_and_the_server_goes_on(llm: LocalLLM) -> None:
    pop = build_pop(spoken_context())
    summarizer = LlmSummarizer(settings_for(llm, 0.5))
    try:
        result = await summarizer.summarize(pop)
    finally:
        await summarizer.close()
    assert result.status == "timeout" and result.elapsed_s < 2.0
    # the abandoned generation was aborted: a short request is answered at once
    client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="sk-local", max_retries=0,
                                timeout=60)
    try:
        t = time.monotonic()
        reply = await client.chat.completions.create(
            model=llm.model, messages=[{"role": "user", "content": "你好"}], max_tokens=4)
        took = time.monotonic() - t
        assert reply.choices[0].message.content is not None
        assert took < 15, f"the server was still busy with the abandoned answer ({took:.1f} s)"
        with pytest.raises(openai.BadRequestError):  # a malformed request is refused clearly
            await client.chat.completions.create(model=llm.model, messages=[], max_tokens=4)
    finally:
        await client.close()
    assert parse_summary("not json") is None


async def test_the_intent_chooser_against_a_real_model(llm: LocalLLM) -> None:
    """``dialog.nlu.llmchoice``: whatever the model says, the answer is one of the options
    offered or None, never an error; past its budget it is None at once (counted late)."""
    from dialog.nlu.llmchoice import LlmIntentChooser, Option

    options = [Option("fuel_locked", "加油卡锁卡", "加油卡被锁了怎么办"),
               Option("fuel_loss", "加油卡挂失", "加油卡丢了怎么挂失")]
    roomy = LlmIntentChooser(settings_for(llm, 30.0), budget_s=20.0)
    try:
        pick = await roomy.choose("我的加油卡找不到了", options)
    finally:
        await roomy.close()
    assert pick in (None, "fuel_locked", "fuel_loss")
    assert sum(roomy.stats.values()) == 1 and not roomy.stats["error"], roomy.stats
    tight = LlmIntentChooser(settings_for(llm, 30.0), budget_s=0.001)
    t = time.monotonic()
    try:
        assert await tight.choose("我的加油卡找不到了", options) is None
    finally:
        await tight.close()
    assert tight.stats["late"] == 1 and time.monotonic() - t < 1.0
