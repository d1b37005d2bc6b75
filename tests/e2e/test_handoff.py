"""End to end through the real Asterisk: the screen pop reaches the agent whose phone rings.

agent1's phone (the project's SIP user agent, registered with digest auth) and agent1's
desktop websocket are up; a caller dials 956100, presses 1 (oil line) then 0 (agent). The pop
must be on the desktop within 100 ms of AMI AgentCalled, while the phone is still ringing;
then the phone answers and hears the caller, the caller's words during the agent call reach the
desktop as live transcript lines (with the knowledge suggestions asked again), and the LLM
summary (from a local OpenAI-compatible HTTP server) follows on the same websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from asterisk.runner import ManagedAsterisk
from handoff.summary import LlmSummarizer
from ivr.core.config import LLMSettings, Settings
from ivr.sim.demo import listen_until_quiet
from ivr.sim.desk import dev_desk_headers
from ivr.sim.sipua import SipPhone, SipUserAgent, voiced_seconds
from ivr.telephony.ami import AmiClient, QueueEvent
from ivr.web.keys import HANDOFF, RECOGNIZER
from tests.conftest import ServerControl
from tests.e2e.test_voice import spoken as rendered_speech
from tests.fake_llm import FakeLLM

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]


@pytest.fixture(scope="module")
async def ami(settings: Settings, asterisk: ManagedAsterisk) -> AsyncIterator[AmiClient]:
    client = AmiClient(settings.asterisk)
    await client.connect()
    await client.wait_connected(15)
    yield client
    client.close()




@pytest.fixture
async def agent1_phone(settings: Settings, asterisk: ManagedAsterisk) -> AsyncIterator[SipPhone]:
    a = settings.asterisk
    phone = SipPhone(server_host=a.bind_host, server_port=a.sip_port, username="agent1",
                     password=a.agent_password.get_secret_value(), display_name="Agent 1")
    await phone.start()
    assert await phone.register(120) > 0
    yield phone
    await phone.close()  # unregisters: later tests find no agent in the queues


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLM]:
    llm = await FakeLLM().start()
    yield llm
    await llm.close()


class Desktop:
    """agent1's websocket: every message with the moment it arrived."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.messages.append((time.monotonic(), json.loads(msg.data)))
                self.changed.set()

    async def wait_for(self, pred: Any, timeout: float) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            for at, m in self.messages:
                if pred(m):
                    return at, m
            left = deadline - time.monotonic()
            if left <= 0:
                got = [m.get("event") for _, m in self.messages]
                raise TimeoutError(f"no such message; got {got}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def agent_called(events: asyncio.Queue[QueueEvent], timeout: float) -> QueueEvent:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = await asyncio.wait_for(events.get(), left)
        if event.kind == "AgentCalled" and event.member.endswith("/agent1"):
            return event
    raise TimeoutError("no AgentCalled for agent1")


async def test_screen_pop_reaches_the_ringing_agent_before_the_answer(
    server: ServerControl, settings: Settings, caller: SipUserAgent, agent1_phone: SipPhone,
    ami: AmiClient, fake_llm: FakeLLM,
) -> None:
    assert server.app is not None
    service = server.app[HANDOFF]
    live_skipped = None if RECOGNIZER in server.app else (
        "no recogniser loaded: the caller's words cannot reach the desktop live")
    fake_llm.delay_s = 0.3
    service.summarizer = LlmSummarizer(LLMSettings(
        base_url=fake_llm.base_url, api_key=SecretStr("sk-test"), model="test-model",
        timeout_s=5.0))
    web = f"http://{settings.web.host}:{settings.web.port}"
    events = ami.subscribe()
    async with aiohttp.ClientSession() as http:
        auth = await dev_desk_headers(http, settings, "agent1")
        desktop = Desktop(await http.ws_connect(f"{web}/agent/ws?agent=agent1", headers=auth))
        try:
            await desktop.wait_for(lambda m: m["type"] == "hello", 2)
            call = await caller.call("956100")
            await listen_until_quiet(call)
            await call.send_dtmf("1")  # the oil line
            await listen_until_quiet(call)
            await call.send_dtmf("0")  # an agent, please

            ringing = await agent1_phone.next_call(timeout=30)
            called = await agent_called(events, 5)
            pop_at, offered = await desktop.wait_for(
                lambda m: m.get("event") == "offered", 2)
            delay = pop_at - called.received_at
            invite = (pop_at - ringing.offered_at) * 1000
            print(f"\nAMI AgentCalled -> agent1's websocket: {delay * 1000:.1f} ms; "
                  f"INVITE at the phone -> websocket: {invite:.1f} ms")
            assert abs(delay) < 0.1
            assert not ringing.answered.done(), "the pop must arrive while the phone rings"
            pop = offered["pop"]
            assert ringing.caller_number == "13800138000"  # the agent's phone shows it in full
            assert pop["caller"] == "138****8000"  # the pop (Redis, the model) masked
            assert (pop["line"], pop["queue"], pop["reason"]) == (
                "oil", "hotline-oil", "caller_request")
            assert pop["reason_label"] == "来电人要求人工服务"
            assert pop["state"] == "ringing" and pop["offered_to"] == ["agent1"]
            spoken = [t["text"] for t in pop["transcript"] if t["kind"] == "say"]
            assert spoken[0].startswith("您好，欢迎致电") and any("加油卡业务" in s for s in spoken)
            assert [t["keys"] for t in pop["transcript"] if t["kind"] == "dtmf"] == ["1", "0"]
            assert pop["summary"]["situation"].startswith("来电人要求人工服务")
            assert called.uniqueid == pop["channel_id"]

            answered_at = time.monotonic()
            await ringing.answer()
            assert pop_at < answered_at
            await desktop.wait_for(lambda m: m.get("event") == "connected", 3)
            # the caller speaks; the agent hears it, and the words reach the desktop (live)
            await call.play(await rendered_speech(server, "查一下我的加油卡还有多少钱。"))
            said_at = time.monotonic()  # the end of the caller's words
            await asyncio.sleep(0.5)
            assert voiced_seconds(ringing.heard()) > 0.8, "the agent must hear the caller"
            if live_skipped is None:
                seen_at, grown = await desktop.wait_for(
                    lambda m: m.get("event") == "transcript", 15)
                print(f"caller's words -> agent's desktop (live): {seen_at - said_at:.2f} s")
                live = [t for t in grown["pop"]["transcript"] if t.get("live")]
                # the path, not the words: synthetic speech under load may be misheard
                assert len(live) == 1 and live[0]["who"] == "caller", live
                assert live[0]["text"].strip(), live
                await desktop.wait_for(lambda m: m.get("type") == "suggestions"
                                       and m["version"] >= grown["pop"]["version"], 10)
            _, summarized = await desktop.wait_for(
                lambda m: m.get("type") == "pop" and m["pop"]["llm_status"] == "ok", 5)
            assert summarized["pop"]["llm_summary"]["situation"]

            # a desktop that reconnects gets the current pop (with the LLM summary) at once
            late = Desktop(await http.ws_connect(f"{web}/agent/ws?agent=agent1", headers=auth))
            _, current = await late.wait_for(lambda m: m.get("event") == "current", 2)
            assert current["pop"]["handoff_id"] == pop["handoff_id"]
            assert current["pop"]["agent"] == "agent1" and current["pop"]["llm_status"] == "ok"
            await late.close()

            await call.hangup()  # the caller's BYE reaches the agent's phone
            await ringing.wait_hangup(5)
            assert ringing.ended_by_remote
        finally:
            ami.unsubscribe(events)
            await desktop.close()
        scrape = {"Authorization": f"Bearer {settings.web.metrics_token.get_secret_value()}"}
        async with http.get(f"{web}/metrics", headers=scrape) as r:
            metrics = await r.text()
    figures = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
               if line.startswith("ivr_handoff_pop_") and line.split()[0].endswith(
                   ("_last", "_count"))}
    print("handoff metrics:", figures)
    assert figures["ivr_handoff_pop_delivery_seconds_count"] >= 1
    assert figures["ivr_handoff_pop_delivery_seconds_last"] < 0.1
    assert figures["ivr_handoff_pop_build_seconds_last"] < 0.005
    if live_skipped is not None:  # reported, not silently passed: the rest of the test ran
        pytest.skip(f"{live_skipped} (the pop, summary and call checks above passed)")
