"""The handoff's LLM paths against a real model: llama.cpp serving Gemma 3 270M behind an
OpenAI-compatible API (``tests/local_llm.py``), called by the production ``openai`` client.

The model is tiny and its answers are poor, which is the point: whatever it says, the pop gets
either a summary that passed validation or keeps the deterministic one (``invalid``), the
ticket keeps only fields that pass the form's schema, nothing is ``error`` (the wire format
is right), and a model slower than the timeout is abandoned without wedging the server."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator

import openai
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from handoff.rules import SECTIONS
from handoff.service import HandoffService
from handoff.store import current_key
from handoff.summary import LlmSummarizer, parse_summary
from handoff.tickets import TicketForm
from ivr.core.config import HandoffSettings, LLMSettings
from ivr.core.handoff import HandoffContext, TraceEntry
from ivr.core.storage.redis_server import connect_redis
from tests.local_llm import LocalLLM
from tests.test_handoff_service import context, queue_event

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


async def test_summary_and_ticket_from_a_real_model(llm: LocalLLM, redis: aioredis.Redis) -> None:
    service = HandoffService(redis, HandoffSettings(), settings_for(llm, 120.0))
    await service.start()
    try:
        ctx = spoken_context()
        desktop = service.subscribe("agent1")
        t = time.perf_counter()
        await service.handoff(ctx)
        assert time.perf_counter() - t < 0.05  # the pop never waits for the model
        await service.on_queue_event(queue_event("AgentCalled", ctx.channel_id))
        offered = desktop.get_nowait()
        assert offered["pop"]["llm_status"] == "pending"
        deterministic = offered["pop"]["summary"]
        await service.wait_summaries(240)
        pop = await service.current("agent1")
        assert pop is not None
        print(f"\nreal model: summary {pop.llm_status}, ticket {pop.ticket_status}; "
              f"server log: {llm.log[1:]}")
        assert pop.llm_status in ("ok", "invalid"), pop.llm_status  # never error/timeout
        assert pop.ticket_status in ("ok", "invalid"), pop.ticket_status
        assert pop.summary == deterministic  # the structured part is never replaced
        if pop.llm_status == "ok":
            assert pop.llm_summary is not None
            sections = {k: v for k, v in pop.llm_summary.items() if k != "text"}
            assert set(sections) == {key for key, _ in SECTIONS}
            assert sum(len(v) for v in sections.values()) <= 300
        else:
            assert pop.llm_summary is None
        form = TicketForm.model_validate({k: v for k, v in pop.ticket.items()
                                          if k in TicketForm.model_fields})
        assert form.contact == "13800138000"  # never from the model
        lines = "\n".join(service.metrics_lines())
        assert f'ivr_handoff_llm_summaries_total{{status="{pop.llm_status}"}} 1' in lines
    finally:
        await service.close()


async def test_a_slow_real_model_is_abandoned_and_the_server_goes_on(llm: LocalLLM) -> None:
    pop_ctx = spoken_context()
    from handoff.pop import build_pop

    pop = build_pop(pop_ctx)
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
