"""Live assist (handoff/live.py): once an agent answers, the caller's words are added to the
pop as they are recognised. Here the ears are a scripted stand-in for the ARI snoop + listener
(the end-to-end test in test_handoff.py uses the real ones through Asterisk); what is checked is
the service's side: who is followed, what reaches the desktop, masking, limits and the ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from handoff.live import LiveTranscripts
from handoff.service import HandoffService
from handoff.store import channel_key, current_key
from ivr.core.config import HandoffSettings, LLMSettings
from ivr.core.storage.redis_server import connect_redis
from tests.integration.test_handoff_service import CARD, context, queue_event

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Words:
    text: str


class ScriptedEars:
    """Says what the test puts in ``said``; records start and close."""

    def __init__(self, fail_start: bool = False) -> None:
        self.said: asyncio.Queue[str] = asyncio.Queue()
        self.started = self.closed = False
        self.fail_start = fail_start

    async def start(self) -> None:
        if self.fail_start:
            raise OSError("snoop refused")
        self.started = True

    async def next_utterance(self, no_input_s: float) -> Words | None:
        try:
            return Words(await asyncio.wait_for(self.said.get(), no_input_s))
        except TimeoutError:
            return None

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = await connect_redis(redis_url)
    for agent in ("agent1", "agent2"):
        await client.delete(current_key(agent))
    yield client
    await client.aclose()


async def live_service(redis: aioredis.Redis, ears: dict[str, ScriptedEars],
                       max_calls: int = 2) -> HandoffService:
    settings = HandoffSettings(llm_summary=False)
    service = HandoffService(redis, settings, LLMSettings())
    service.attach_live(LiveTranscripts(lambda channel_id: ears.get(channel_id),
                                        service.add_caller_words, max_calls=max_calls))
    await service.start()
    return service


async def until(pred: object, timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if pred():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_the_callers_words_reach_the_agent_while_they_talk(redis: aioredis.Redis) -> None:
    ctx = context()
    ears = {ctx.channel_id: ScriptedEars()}
    service = await live_service(redis, ears)
    try:
        desktop = service.subscribe("agent1")
        await service.handoff(ctx)
        await service.on_queue_event(queue_event("AgentCalled", ctx.channel_id))
        assert service.live is not None and service.live.following == 0  # not while ringing
        await service.on_queue_event(queue_event("AgentConnect", ctx.channel_id))
        await until(lambda: ears[ctx.channel_id].started)
        while not desktop.empty():
            desktop.get_nowait()
        ears[ctx.channel_id].said.put_nowait(f"我的卡号是{CARD}，卡被别人拿走了")
        update = await asyncio.wait_for(desktop.get(), 2)
        assert (update["type"], update["event"]) == ("pop", "transcript")
        line = update["pop"]["transcript"][-1]
        assert line["live"] and line["who"] == "caller" and line["kind"] == "speech"
        assert CARD not in line["text"] and CARD[-4:] in line["text"]  # masked, tail kept
        assert line["t"] >= update["pop"]["transcript"][-2]["t"]
        pop = await service.current("agent1")
        assert pop is not None and pop.transcript[-1] == line  # a late desktop gets it too
        lines = "\n".join(service.metrics_lines())
        assert 'ivr_handoff_live_transcripts_total{outcome="started"} 1' in lines
        assert "ivr_handoff_live_utterances_total 1" in lines

        await service.on_queue_event(queue_event("AgentComplete", ctx.channel_id))
        await until(lambda: ears[ctx.channel_id].closed)
        assert service.live.following == 0
    finally:
        await service.close()


async def test_limits_failures_and_other_processes_pops(redis: aioredis.Redis) -> None:
    a, b, c = context(), context(), context()
    ears = {a.channel_id: ScriptedEars(), b.channel_id: ScriptedEars(),
            c.channel_id: ScriptedEars(fail_start=True)}
    service = await live_service(redis, ears, max_calls=1)
    try:
        for ctx, agent in ((a, "agent1"), (b, "agent2")):
            await service.handoff(ctx)
            await service.on_queue_event(queue_event("AgentCalled", ctx.channel_id, agent))
            await service.on_queue_event(queue_event("AgentConnect", ctx.channel_id, agent))
        live = service.live
        assert live is not None
        assert live.following == 1 and live.outcomes["refused"] == 1  # one call at most
        await service.on_queue_event(queue_event("QueueCallerAbandon", a.channel_id))
        await until(lambda: live.following == 0)

        await service.handoff(c)  # a tap that cannot open ends that follow only
        await service.on_queue_event(queue_event("AgentConnect", c.channel_id))
        await until(lambda: live.outcomes["failed"] == 1)
        assert ears[c.channel_id].closed and live.following == 0

        other = HandoffService(redis, HandoffSettings(llm_summary=False), LLMSettings())
        other_ears = {a.channel_id: ScriptedEars()}
        other.attach_live(LiveTranscripts(lambda ch: other_ears.get(ch),
                                          other.add_caller_words))
        await other.start()
        d = context(a.channel_id)  # made by `service`: `other` learns of it through Redis
        await service.handoff(d)
        for _ in range(100):
            if await redis.get(channel_key(d.channel_id)) in (d.handoff_id,
                                                               d.handoff_id.encode()):
                break
            await asyncio.sleep(0.02)
        await other.on_queue_event(queue_event("AgentConnect", d.channel_id))
        assert (await other.find_pop(d.handoff_id)) is not None
        assert other.live is not None and other.live.following == 0
        await other.close()
    finally:
        await service.close()
